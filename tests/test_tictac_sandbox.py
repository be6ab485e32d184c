"""The Tic-Tac Mobile sandbox over real sockets: the document's behaviour, the call limit, the fault
switches and every open-behaviour switch."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree

from sandbox.tictac import ACCEPT_TEXT, SWITCHES
from tests.conftest import TicTacSandbox
from tests.support import tictac_document as doc

ADURO = "1137768437234"
ABC = "1455109526722"
FRANVARO = "1137703186406"


def _xml(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/xml"), response.text
    return ElementTree.fromstring(response.content)


def _children(element: Any) -> dict[str, str]:
    return {child.tag: (child.text or "") for child in element if not len(child)}


def _curl_body(line: str) -> dict[str, Any]:
    return json.loads(line[line.index("{"): line.rindex("}") + 1])


# --- authentication and formats ----------------------------------------------------------------
def test_a_missing_or_wrong_api_code_is_401_with_a_message(tictac: TicTacSandbox) -> None:
    bare = httpx.get(f"{tictac.base_url}/v1/users", timeout=10)
    assert bare.status_code == 401 and "Bearer" in bare.text
    with tictac.client(Authorization="Bearer xxxxxxxxxx.yyyyyyyyyyy.zzzzzzzzzzz") as client:
        wrong = client.get("/v1/users")
    assert wrong.status_code == 401 and wrong.text == "Invalid API code"
    with tictac.client(Authorization=f"Basic {tictac.api_code}") as client:
        assert client.get("/v1/users").status_code == 401
    with tictac.client() as client:
        assert client.get("/v1/hello").json()["HelloFromTicTacAPI"].startswith("Hello! from version")
    assert tictac.api_code.count(".") == 2  # JWT-shaped, as the document's "xxxxxxxxxx.yyyyyyyyyyy.zzzzzzzzzzz"


def test_an_expired_api_code_is_refused(tictac: TicTacSandbox) -> None:
    code = tictac.set_api_code(expires="2030-01-01T00:00:00+00:00")
    with httpx.Client(base_url=tictac.base_url, headers={"Authorization": f"Bearer {code}"}, timeout=10) as client:
        assert client.get("/v1/hello").status_code == 200
        tictac.set_now("2030-01-02T00:00:00+00:00")
        expired = client.get("/v1/hello")
    assert expired.status_code == 401 and "expired" in expired.text


def test_json_and_xml_are_chosen_by_the_accept_header(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        as_json = client.get("/v1/users")
    with tictac.client(accept="application/xml") as client:
        as_xml = client.get("/v1/users")
    with tictac.client(accept="text/html") as client:
        refused = client.get("/v1/users")
    assert as_json.headers["content-type"].startswith("application/json")
    root = _xml(as_xml)
    assert root.tag == "TicTacUsers"
    assert [u.findtext("userName") for u in root] == [u["userName"] for u in as_json.json()]
    assert refused.status_code == 406 and refused.text == ACCEPT_TEXT


def test_write_answers_follow_the_accept_header_too(tictac: TicTacSandbox) -> None:
    with tictac.client(accept="application/xml") as client:
        created = _xml(client.post("/v1/projects", json={"name": "XML-svar"}))
        updated = _xml(client.put(f"/v1/projects/{created.text}", json={"isActive": False}))
        user = _xml(client.post("/v1/users", content=doc.USER_POST_XML.replace("johnnyboy<", "xmlsvar<").encode(),
                                headers={"Content-Type": "application/xml"}))
    assert created.tag == "projectId" and created.text.isdigit()
    assert (updated.tag, updated.text) == ("result", "Project updated")
    assert user.tag == "userPassword" and user.text
    [project] = [p for p in tictac.state()["projects"] if p["projid"] == created.text]
    assert project["isActive"] is False


def test_a_body_that_is_neither_json_nor_xml_is_415(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        response = client.post("/v1/projects", content=b"name=X", headers={"Content-Type": "text/plain"})
        broken = client.post("/v1/projects", content=b"<project><name>", headers={"Content-Type": "application/xml"})
        bomb = client.post("/v1/projects", headers={"Content-Type": "application/xml"},
                           content=b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa">]><project><name>&a;</name>'
                                   b"</project>")
    assert response.status_code == 415
    assert broken.status_code == 400 and bomb.status_code == 400
    assert not [p for p in tictac.state()["projects"] if p["name"].startswith("aaaa")]


# --- the document's samples ---------------------------------------------------------------------
def test_users_answer_exactly_as_the_documents_json_samples(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        users = {u["userName"]: u for u in client.get("/v1/users").json()}
        johnny = client.get("/v1/users/johnnyboy").json()
        missing = client.get("/v1/users/anderslm")
    for sample in json.loads(doc.USERS_JSON):
        assert users[sample["userName"]] == sample
        assert list(users[sample["userName"]]) == list(sample)  # the document's field order
    assert johnny == json.loads(doc.USER_JOHNNYBOY_JSON)
    assert missing.status_code == 404 and missing.text == "No user with id anderslm"  # TT:78


def test_activities_and_entries_answer_as_the_documents_json_samples(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        activities = client.get("/v1/activities", params={"projectId": "3265353621"}).json()
        entries = client.get("/v2/entries", params={"startdate": "2020-11-03", "enddate": "2020-11-04"}).json()
        v1 = client.get("/v1/entries", params={"startdate": "2020-11-03", "enddate": "2020-11-04"}).json()
    assert activities == json.loads(doc.ACTIVITIES_JSON)
    assert entries == json.loads(doc.ENTRIES_V2_JSON)
    assert v1 == entries  # "JSON rows are identical in both"


def test_the_documents_xml_samples_parse_and_match_the_sandbox(tictac: TicTacSandbox) -> None:
    with tictac.client(accept="application/xml") as client:
        v2 = client.get("/v2/entries", params={"startdate": "2020-11-10", "enddate": "2020-11-30"})
        v1 = client.get("/v1/entries", params={"startdate": "2022-01-01", "enddate": "2022-01-02"})
        projects = client.get("/v1/projects")
    assert v2.text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>')

    sample_v2 = ElementTree.fromstring(doc.ENTRIES_V2_XML.encode())
    assert [_children(row) for row in _xml(v2)] == [_children(row) for row in sample_v2]

    sample_v1 = ElementTree.fromstring(doc.ENTRIES_V1_XML.encode())
    answer_v1 = _xml(v1)
    assert [row.tag for row in answer_v1] == [row.tag for row in sample_v1] == ["TicTacSale", "TicTacTime", "TicTacTime"]
    for ours, theirs in zip(answer_v1, sample_v1, strict=True):
        expected = _children(theirs)
        assert {k: v for k, v in _children(ours).items() if k in expected} == expected
        assert [c.tag for c in ours if c.tag in expected] == [c.tag for c in theirs]

    by_id = {p.findtext("projid"): p for p in _xml(projects)}
    [sample_abc] = ElementTree.fromstring(doc.PROJECTS_XML_FIRST.encode())
    ours_abc = _children(by_id[ABC])
    assert {k: ours_abc[k] for k in _children(sample_abc)} == _children(sample_abc)
    assert "Vässterås" in ours_abc["invoiceAdrrow3"] and ours_abc["ourCategory"] == "Löpande räkning"
    sample_acts = [_children(a) for a in ElementTree.fromstring(doc.ADURO_ACTIVITIES_XML.encode())]
    ours_acts = {a.findtext("actid"): _children(a) for a in by_id[ADURO].find("Activities")}
    for sample in sample_acts:
        assert ours_acts[sample["actid"]] == sample


def test_projects_are_sorted_by_name_and_filtered_by_number(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        created = client.post("/v1/projects", json={"name": "Åkeri Nord", "projectNumber": "4711"})
        names = [p["name"] for p in client.get("/v1/projects").json()]
        by_number = client.get("/v1/projects", params={"projectNumber": "4711"}).json()
        newest = client.get("/v1/projects", params={"number": "1"}).json()
        too_many = client.get("/v1/projects", params={"number": "10001"})
    assert names == sorted(names, key=str.casefold) and "FRÅNVARO" in names
    assert [p["projid"] for p in by_number] == [created.json()["projectId"]] == [p["projid"] for p in newest]
    assert by_number[0]["name"] == "Åkeri Nord"
    assert too_many.status_code == 400


# --- writes ---------------------------------------------------------------------------------------
def test_a_project_is_created_with_its_activities_in_the_same_post(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        created = client.post("/v1/projects", json=_curl_body(doc.PROJECT_POST_JSON))
        projid = created.json()["projectId"]
        activities = client.get("/v1/activities", params={"projectId": projid}).json()["activities"]
        project = client.get(f"/v1/projects/{projid}").json()
        from_xml = client.post("/v1/projects", content=doc.PROJECT_POST_XML.replace("Twenty", "Thirty").encode(),
                               headers={"Content-Type": "application/xml"})
        xml_acts = client.get("/v1/activities", params={"projectId": from_xml.json()["projectId"]}).json()
    assert created.status_code == 201 and projid.isdigit() and len(projid) == 13
    assert {(a["name"], a["hourRate"]) for a in activities} == {("Planning", 800.0), ("PR", 750.0)}
    assert all(a["isActive"] and a["type"] == "WORKHOURS" for a in activities)
    assert project["invoiceCorpname"] == "SpaceY" and project["hourRate"] == 900
    assert [a["name"] for a in project["activities"]] == ["Planning", "PR"]
    assert from_xml.status_code == 201
    assert {a["name"] for a in xml_acts["activities"]} == {"Planning", "PR"}
    assert tictac.writes() == {"POST /api/rest/v1/projects": 2}


def test_a_bad_activity_in_a_project_post_stores_nothing(tictac: TicTacSandbox) -> None:
    before = len(tictac.state()["projects"])
    with tictac.client() as client:
        response = client.post("/v1/projects", json={"name": "X", "activities": [{"name": "A"}, {"hourRate": "1"}]})
    assert response.status_code == 400 and "name is required" in response.text
    assert len(tictac.state()["projects"]) == before


def test_activities_are_created_and_updated(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        created = client.post("/v1/activities", json={
            "projectId": ADURO, "name": "Berits Gyrra activity", "description": "Form, layout", "hourRate": 900.0,
            "otherCurrHourRate": 99.0, "accountNumber": "3010", "isActive": True, "type": "OVERTIME",
            "priceMode": "PRICELIST", "priceListId": "1480940462799"})
        actid = created.json()["activityId"]
        updated = client.put(f"/v1/activities/{actid}", json={"name": "Berits Invention", "priceMode": "PRICEINPROJECT",
                                                               "type": "WORKHOURS", "isActive": False})
        listed = {a["actid"]: a for a in client.get("/v1/activities", params={"projectId": ADURO}).json()["activities"]}
        unknown = client.put("/v1/activities/1", json={"name": "x"})
        bad_mode = client.put(f"/v1/activities/{actid}", json={"priceMode": "FREE"})
    assert updated.json() == {"activityId": actid}
    assert listed[actid] | {"actid": ""} == {
        "name": "Berits Invention", "actid": "", "description": "Form, layout", "hourRate": 900.0,
        "otherCurrHourRate": 99.0, "accountNumber": "3010", "isActive": False, "type": "WORKHOURS", "priceMode": 0,
        "priceListId": "1480940462799"}
    assert unknown.status_code == 404 and unknown.text == "No activity with id 1"
    assert bad_mode.status_code == 400


def test_a_new_user_gets_a_password_that_is_never_listed_or_stored(tictac: TicTacSandbox) -> None:
    body = _curl_body(doc.USER_POST_JSON) | {"userName": "lisaandersson", "emailAdress": "lisa@tictac.se"}
    with tictac.client() as client:
        created = client.post("/v1/users", json=body)
        password = created.json()["userPassword"]
        listed = client.get("/v1/users").text
        one = client.get("/v1/users/lisaandersson")
        twice = client.post("/v1/users", json=_curl_body(doc.USER_POST_JSON))
    with tictac.client(accept="application/xml") as client:
        listed_xml = client.get("/v1/users").text
    state = tictac.state()
    assert created.status_code == 201 and list(created.json()) == ["userPassword"] and len(password) >= 8
    for text in (listed, one.text, listed_xml, json.dumps(state)):
        assert password not in text
    [stored] = [u for u in state["users"] if u["userName"] == "lisaandersson"]
    assert stored["hasPassword"] is True and "password" not in {k.lower() for k in stored}
    assert stored["phoneNumber"] == "07007070707" and "phoneNumber" not in one.json()  # POST-only field
    assert one.json()["firstName"] == "John" and one.json()["userType"] == "CUSR"
    assert twice.status_code == 400 and "johnnyboy" in twice.text


def test_a_user_is_created_from_the_documents_xml_body_and_updated_partially(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        created = client.post("/v1/users", content=doc.USER_POST_XML.replace("johnnyboy<", "kallekula<").encode(),
                              headers={"Content-Type": "application/xml"})
        updated = client.put("/v1/users/kallekula", json={"partTime": "80", "team": "Glady's gang",
                                                          "department": "Avd 3"})
        user = client.get("/v1/users/kallekula").json()
        renamed = client.put("/v1/users/kallekula", json={"userName": "other"})
    assert created.status_code == 201 and "userPassword" in created.json()
    assert updated.status_code == 200
    assert (user["partTime"], user["team"], user["department"], user["lastName"]) == (80, "Glady's gang", "Avd 3",
                                                                                      "Smith")
    assert renamed.status_code == 400


def test_a_user_name_taken_by_another_tictac_customer_is_refused(tictac: TicTacSandbox) -> None:
    tictac.take_usernames("acme1001")
    with tictac.client() as client:
        response = client.post("/v1/users", json={"userName": "acme1001", "firstName": "A", "lastName": "B"})
    assert response.status_code == 400 and "acme1001" in response.text


def test_project_update_answers_as_documented(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        updated = client.put(f"/v1/projects/{ADURO}", json={"name": "Green API-project", "isActive": False,
                                                            "hourRate": 999, "priceMode": "PRICELIST"})
        project = client.get(f"/v1/projects/{ADURO}").json()
        unknown = client.put("/v1/projects/1224255233", json={"name": "x"})
        via_collection = client.put("/v1/projects", json={"projectId": ADURO, "isActive": True})
    assert updated.json() == "Project updated"
    assert (project["name"], project["isActive"], project["hourRate"], project["priceMode"]) == (
        "Green API-project", False, 999, "PRICELIST")
    assert project["description"].startswith("En ny funtionalitet")  # not sent: kept
    assert unknown.status_code == 404 and unknown.text == "No project with id 1224255233"
    assert via_collection.status_code == 200


# --- entries ---------------------------------------------------------------------------------------
def test_entries_need_a_date_window_and_filter_by_type_project_and_user(tictac: TicTacSandbox) -> None:
    window = {"startdate": "2020-01-01", "enddate": "2022-12-31"}
    with tictac.client() as client:
        missing = client.get("/v2/entries", params={"startdate": "2020-01-01"})
        everything = client.get("/v2/entries", params=window).json()["ticTacRows"]
        time_only = client.get("/v2/entries", params=window | {"timeOnly": "true"}).json()["ticTacRows"]
        project = client.get("/v2/entries", params=window | {"projectId": ADURO}).json()["ticTacRows"]
        by_path = client.get(f"/v2/entries/{ADURO}", params=window).json()["ticTacRows"]
        fia = client.get("/v2/entries", params=window | {"userId": "fiamia"}).json()["ticTacRows"]
    assert missing.status_code == 400
    assert {r["type"] for r in everything} == {"TicTacTime", "TicTacCost", "TicTacMile", "TicTacSale"}
    assert {r["type"] for r in time_only} == {"TicTacTime"} and len(time_only) == 8
    assert {r["projid"] for r in project} == {ADURO} and project == by_path and len(project) == 6
    assert {r["username"] for r in fia} == {"Fia Svartenbrant"} and len(fia) == 3
    assert [r["attested"] for r in everything].count(False) == 1  # the v1 sample's TicTacSale


def test_days_changed_within_finds_edited_old_entries_and_deleted_ones_vanish(tictac: TicTacSandbox) -> None:
    tictac.set_now("2026-11-20T12:00:00+00:00")
    window = {"startdate": "2020-01-01", "enddate": "2026-12-31"}
    with tictac.client() as client:
        created = client.post("/v2/entries", json={"targetUserId": "PerAdm", "projectId": ADURO,
                                                   "activityId": "1137768502203", "date": "2026-11-19",
                                                   "spec": "Möte med gruppen", "hours": "1.5"})
        rowid = created.json()["createditemid"]
        tictac.edit_entry("1605175001865", hours=6.5)  # an old, attested row corrected today
        changed = client.get("/v2/entries", params=window | {"daysChangedWithin": "1"}).json()["ticTacRows"]
        too_far = client.get("/v2/entries", params=window | {"daysChangedWithin": "91"})
        refused = client.delete(f"/v2/entries/{'1605175003698'}", params={"userId": "PerAdm"})  # attested
        deleted = client.delete(f"/v2/entries/{rowid}", params={"userId": "PerAdm"})
        after = client.get("/v2/entries", params=window).json()["ticTacRows"]
    assert created.status_code == 201
    assert {r["rowid"]: r["hours"] for r in changed} == {rowid: "1.5", "1605175001865": "6.5"}
    new = next(r for r in changed if r["rowid"] == rowid)
    assert new["attested"] is False and new["invoiced"] is False
    assert new["projectname"] == "Aduro Intranet/Implementation"
    assert too_far.status_code == 400
    assert refused.status_code == 400
    assert deleted.status_code == 200 and deleted.text == "OK"
    assert rowid not in {r["rowid"] for r in after} and "1605175003698" in {r["rowid"] for r in after}


def test_an_entry_post_names_what_is_missing(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        no_user = client.post("/v2/entries", json={"targetUserId": "nobody", "projectName": "Aduro Intranet",
                                                   "activityName": "Testning", "date": "2022-10-02", "hours": "1"})
        no_activity = client.post("/v2/entries", json={"targetUserId": "PerAdm", "projectName": "Aduro Intranet",
                                                       "activityName": "", "date": "2022-10-02", "hours": "2"})
        by_name = client.post("/v1/entries", json={"targetUserId": "PerAdm", "projectName": "ABC-analys Hedgehog",
                                                   "activityName": "Tillägg", "spec": "Skriver en rad",
                                                   "source": "abc", "date": "2022-10-02", "hours": "2.5"})
    assert no_user.status_code == 404 and no_user.text == "No user with id nobody"
    assert no_activity.status_code == 400
    assert by_name.status_code == 201 and "createditemid" in by_name.json()


# --- the call limit -------------------------------------------------------------------------------
def test_the_daily_limit_answers_429_with_retry_after_and_recovers_after_24_hours(tictac: TicTacSandbox) -> None:
    assert tictac.limit()["limit"] == 500
    tictac.limit(3)
    with tictac.client() as client:
        answers = [client.get("/v1/hello").status_code for _ in range(3)]
        tictac.advance(hours=1)
        refused = client.get("/v1/users")
        retry_after = int(refused.headers["Retry-After"])
        tictac.advance(seconds=retry_after - 5)
        still = client.get("/v1/users")
        tictac.advance(seconds=10)
        again = client.get("/v1/users")
    assert answers == [200, 200, 200]
    assert refused.status_code == 429 and "limit" in refused.text and refused.text.count("{") == 0
    assert 23 * 3600 - 60 < retry_after <= 23 * 3600
    assert still.status_code == 429
    assert again.status_code == 200
    report = tictac.limit()
    assert report["used"] == 1 and report["remaining"] == 2  # the three old calls aged out; 429s do not count


def test_a_lower_limit_counts_the_calls_already_made(tictac: TicTacSandbox) -> None:
    with tictac.client() as client:
        for _ in range(4):
            client.get("/v1/hello")
        tictac.limit(2)
        refused = client.get("/v1/hello")
        tictac.limit(2, forget=True)
        after_forget = client.get("/v1/hello")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert after_forget.status_code == 200


# --- fault switches and counters ----------------------------------------------------------------------
def test_fault_switches_and_call_counters(tictac: TicTacSandbox) -> None:
    tictac.fault("GET", "/api/rest/v1/users", status=503, retry_after=30)
    tictac.fault("POST", "/api/rest/v1/projects", status=500, after_apply=True)
    tictac.fault("GET", "/api/rest/v1/projects", drop=True)
    tictac.fault("GET", "/api/rest/v1/hello", delay=0.2)
    with tictac.client() as client:
        unavailable = client.get("/v1/users")
        recovered = client.get("/v1/users")
        applied = client.post("/v1/projects", json={"name": "Applied anyway"})
        with pytest.raises(httpx.TransportError):
            client.get("/v1/projects")
        delayed = client.get("/v1/hello")
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "30"
    assert recovered.status_code == 200
    assert applied.status_code == 500
    assert any(p["name"] == "Applied anyway" for p in tictac.state()["projects"])
    calls = tictac.calls()
    assert calls["GET /api/rest/v1/users"] == 2 and calls["POST /api/rest/v1/projects"] == 1
    assert delayed.status_code == 200 and calls["GET /api/rest/v1/hello"] == 1
    assert tictac.limit()["used"] == 3  # the good GETs and the applied POST; fault answers before the API are not


# --- open behaviours: each switch changes the answer ---------------------------------------------
Probe = Callable[[TicTacSandbox, httpx.Client], Any]


def _switched(tictac: TicTacSandbox, client: httpx.Client, probe: Probe, **switch: Any) -> tuple[Any, Any]:
    before = probe(tictac, client)
    tictac.switch(**switch)
    return before, probe(tictac, client)


def case_max_rows(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: len(c.get("/v1/users").json()), max_rows=2)


def case_inactive_in_lists(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    c.put(f"/v1/projects/{FRANVARO}", json={"isActive": False})
    return _switched(t, c, lambda t, c: "FRÅNVARO" in [p["name"] for p in c.get("/v1/projects").json()],
                     inactive_in_lists="omitted")


def case_partial_put(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        c.put(f"/v1/projects/{ABC}", json={"name": "ABC-analys Igelkott"})
        return c.get(f"/v1/projects/{ABC}").json()["description"][:7]

    return _switched(t, c, probe, partial_put="replace")


def case_number_case(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    c.post("/v1/projects", json={"name": "Kåk", "projectNumber": "AB12"})
    return _switched(t, c, lambda t, c: len(c.get("/v1/projects", params={"projectNumber": "ab12"}).json()),
                     number_case="insensitive")


def case_username_case(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.get("/v1/users/JOHNNYBOY").status_code, username_case="exact")


def case_numbers_unique(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    counter = iter(range(100))
    return _switched(t, c, lambda t, c: c.post("/v1/users", json={
        "userName": f"dup{next(counter)}", "firstName": "D", "lastName": "U", "employeeNumber": "1298"}).status_code,
        numbers_unique=False)


def case_deleted_entries(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        rowid = c.post("/v2/entries", json={"targetUserId": "fiamia", "projectId": "1567771889595",
                                            "activityId": "1567771990799", "date": "2021-05-05",
                                            "hours": "3"}).json()["createditemid"]
        c.delete(f"/v2/entries/{rowid}", params={"userId": "fiamia"})
        rows = c.get("/v2/entries", params={"startdate": "2021-05-05", "enddate": "2021-05-05"}).json()
        return [r["hours"] for r in rows["ticTacRows"]]

    return _switched(t, c, probe, deleted_entries="zeroed")


def case_project_number(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        projid = c.post("/v1/projects", json={"name": "Nummer", "projectNumber": "P1"}).json()["projectId"]
        return c.get(f"/v1/projects/{projid}").json().get("projectNumber", "absent")

    writable, read_only = _switched(t, c, probe, project_number="read_only")
    t.switch(project_number="absent")
    return (writable, read_only), probe(t, c)


def case_employee_number(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    counter = iter(range(100))

    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        name = f"emp{next(counter)}"
        c.post("/v1/users", json={"userName": name, "firstName": "E", "lastName": "N", "employeeNumber": name})
        return c.get(f"/v1/users/{name}").json()["employeeNumber"]

    return _switched(t, c, probe, employee_number="put_only")


def case_username_with_at(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    counter = iter(range(100))

    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        name = f"eva{next(counter)}@tictac.se"
        response = c.post("/v1/users", json={"userName": name, "firstName": "Eva", "lastName": "Bergman"})
        if response.status_code != 201:
            return response.status_code
        [user] = [u for u in c.get("/v1/users").json() if u["longUserName"] == name]
        return user["userName"]

    derived, kept = _switched(t, c, probe, username_with_at="keep")
    t.switch(username_with_at="reject")
    return (derived, kept), probe(t, c)


def case_project_activities(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        return sorted({"activities", "Activities"} & set(c.get(f"/v1/projects/{ADURO}").json()))

    default, capital = _switched(t, c, probe, project_activities="Activities")
    t.switch(project_activities="none")
    return (default, capital), probe(t, c)


def case_activity_names(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.post("/v1/activities", json={"projectId": ADURO, "name": "testning"})
                     .status_code, activity_names="duplicates")


def case_update_method(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.post(f"/v1/projects/{ADURO}", json={"hourRate": 1000}).status_code,
                     update_method="put_or_post")


def case_unchanged_write(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.put(f"/v1/projects/{ADURO}", json={"name": "Aduro Intranet"}).status_code,
                     unchanged_write=304)


def _changed_rows(params: dict[str, str]) -> Probe:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        window = {"startdate": "2020-11-01", "enddate": "2020-11-12"}
        return sorted(r["rowid"] for r in c.get("/v2/entries", params=window | params).json()["ticTacRows"])

    return probe


def case_days_changed_param(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    t.set_now("2020-11-12T10:00:00+00:00")
    return _switched(t, c, _changed_rows({"daysChangedWithinStr": "1"}), days_changed_param="daysChangedWithin")


def case_days_changed_unit(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    t.set_now("2020-11-12T20:00:00+00:00")  # the 2020-11-11 row changed 27 h ago, on yesterday's date
    return _switched(t, c, _changed_rows({"daysChangedWithin": "1"}), days_changed_unit="hours")


def case_attest_is_change(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    t.set_now("2022-03-01T12:00:00+00:00")

    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        t.edit_entry("1489660871091", attested=not t.edit_entry("1489660871091")["attested"])
        window = {"startdate": "2022-01-01", "enddate": "2022-01-02", "daysChangedWithin": "1"}
        return [r["rowid"] for r in c.get("/v2/entries", params=window).json()["ticTacRows"]]

    return _switched(t, c, probe, attest_is_change=True)


def case_count_errors(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        before = t.limit()["used"]
        c.get("/v1/users/nobody")
        return t.limit()["used"] - before

    return _switched(t, c, probe, count_errors=False)


def case_count_throttled(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        t.limit(0)
        before = t.limit()["used"]
        assert c.get("/v1/hello").status_code == 429
        return t.limit()["used"] - before

    return _switched(t, c, probe, count_throttled=True)


def case_create_status(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    counter = iter(range(100))
    return _switched(t, c, lambda t, c: c.post("/v1/activities", json={"projectId": ADURO,
                                                                       "name": f"Ny {next(counter)}"}).status_code,
                     create_status=200)


def case_undocumented_fields(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        response = c.post("/v1/projects", json={"name": "Fält", "ourCategory": "Fastpris"})
        if response.status_code >= 400:
            return response.text
        return c.get(f"/v1/projects/{response.json()['projectId']}").json()["ourCategory"]

    ignored, rejected = _switched(t, c, probe, undocumented_fields="reject")
    t.switch(undocumented_fields="store")
    return (ignored, rejected), probe(t, c)


def case_projects_json(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: type(c.get("/v1/projects").json()).__name__, projects_json="wrapped")


def case_empty_list(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        response = c.get("/v2/entries", params={"startdate": "1999-01-01", "enddate": "1999-01-31"})
        return response.status_code, response.content

    return _switched(t, c, probe, empty_list=204)


def case_default_format(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.get("/v1/hello", headers={"Accept": "*/*"}).status_code,
                     default_format="reject")


def case_activities_query(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        response = c.get("/v1/activities")
        return response.status_code if response.status_code >= 400 else len(response.json()["activities"])

    return _switched(t, c, probe, activities_query="all")


def case_error_format(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.get("/v1/users/nobody").text, error_format="json")


def case_members_writable(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    def probe(t: TicTacSandbox, c: httpx.Client) -> Any:
        projid = c.post("/v1/projects", json={"name": "Medlemmar", "members": ["ANNATICTACSE"]}).json()["projectId"]
        return c.get(f"/v1/projects/{projid}", params={"includeMembers": "true"}).json()["members"]

    return _switched(t, c, probe, members_writable=True)


def case_booleans(t: TicTacSandbox, c: httpx.Client) -> tuple[Any, Any]:
    return _switched(t, c, lambda t, c: c.get("/v1/users").json()[0]["isActive"], booleans="strings")


EXPECTED: dict[str, tuple[Any, Any]] = {
    "max_rows": (5, 2),
    "inactive_in_lists": (True, False),
    "partial_put": ("Analys ", ""),
    "number_case": (0, 1),
    "username_case": (200, 404),
    "numbers_unique": (400, 201),
    "deleted_entries": ([], ["0.0"]),
    "project_number": (("P1", ""), "absent"),
    "employee_number": ("emp0", ""),
    "username_with_at": (("eva0tictacse", "eva1@tictac.se"), 400),
    "project_activities": ((["activities"], ["Activities"]), []),
    "activity_names": (400, 201),
    "update_method": (405, 200),
    "unchanged_write": (200, 304),
    "days_changed_param": (["1605175003698"], ["1604491998604", "1604592252254", "1604592475583", "1605175001865",
                                               "1605175003698"]),
    "days_changed_unit": (["1605175003698"], []),
    "attest_is_change": ([], ["1489660871091"]),
    "count_errors": (1, 0),
    "count_throttled": (0, 1),
    "create_status": (201, 200),
    "undocumented_fields": (("", 'Unrecognized field "ourCategory"'), "Fastpris"),
    "projects_json": ("list", "dict"),
    "empty_list": ((200, b'{"ticTacRows":[]}'), (204, b"")),
    "default_format": (200, 406),
    "activities_query": (400, 14),
    "error_format": ("No user with id nobody", '{"message":"No user with id nobody"}'),
    "members_writable": ([], ["annatictacse"]),
    "booleans": (True, "true"),
}


def test_every_switch_has_a_case() -> None:
    assert set(EXPECTED) == set(SWITCHES)
    assert all(f"case_{name}" in globals() for name in SWITCHES)


@pytest.mark.parametrize("name", sorted(SWITCHES))
def test_each_open_behaviour_switch_changes_the_answer(tictac: TicTacSandbox, name: str) -> None:
    assert tictac.switch()[name] == SWITCHES[name].default
    with tictac.client() as client:
        default, switched = globals()[f"case_{name}"](tictac, client)
    assert default != switched
    assert (default, switched) == EXPECTED[name]


def test_switches_refuse_unknown_names_and_values(tictac: TicTacSandbox) -> None:
    unknown = httpx.post(f"{tictac.url}/_sandbox/switches", json={"paging": True}, timeout=10)
    bad = httpx.post(f"{tictac.url}/_sandbox/switches", json={"partial_put": "patch"}, timeout=10)
    assert unknown.status_code == 400 and "unknown switch" in unknown.text
    assert bad.status_code == 400
    tictac.switch(partial_put="replace")
    tictac.reset()
    assert tictac.switch()["partial_put"] == "merge"  # a reset restores the defaults
