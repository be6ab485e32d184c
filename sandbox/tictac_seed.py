"""Seed data for the Tic-Tac Mobile sandbox, taken from the samples of the Tic-Tac Mobile API document
(``shared/reference/seeds/tictac-mobile-api.txt``; "TT:nnn" = its line numbers).

Values are copied as the document prints them (Swedish characters, the trailing space in
``corpid``, "Vässterås" …). Where a sample names an object without describing it (a user that
only appears as an entry's ``userid``, an activity that only appears in an entry's
``projectname``), the missing fields are blank; every value the document does *not* show is
marked ``# not in the document`` so a reader can tell sample from filler.

Entries carry two sandbox-only fields that Tic-Tac never returns: ``_created`` and ``_changed``
(ISO timestamps, used by ``daysChangedWithin``). Seeded entries were "last changed" on their own
entry date at 17:00 UTC.
"""

from __future__ import annotations

from typing import Any

#: GET /v1/users (TT:110-160) and GET /v1/users/johnnyboy (TT:168-193).
USERS: list[dict[str, Any]] = [
    {"userName": "andersalm", "longUserName": "andersalm", "firstName": "Anders", "lastName": "Alm",
     "emailAdress": "info@zetera.se", "employeeNumber": "1", "nationalIDNumber": "197203210645",
     "userType": "CPAD", "corpid": "556423-2121 ", "partTime": 0, "isActive": True, "locale": "sv_SE",
     "workgroup": "Ledningsgruppen", "costcenter": "Development", "department": "Avd 2", "team": "Team Beta",
     "hourcost": 750.0, "flexsaldo": 200.0, "flexsaldoDate": "2019-08-01", "mileCompensation": 0.0,
     "startDate": None, "endDate": None, "priceListId": None, "agendaListNumber": 0},
    {"userName": "annatictacse", "longUserName": "anna@tictac.se", "firstName": "Anna", "lastName": "Andersson",
     "emailAdress": "anna@tictac.se", "employeeNumber": "1298", "nationalIDNumber": "196401012281",
     "userType": "CADM", "corpid": "556423-2121 ", "partTime": 0, "isActive": True, "locale": "sv_SE",
     "workgroup": "Konsulter", "costcenter": "Development", "department": "Avd 1", "team": "Team Beta",
     "hourcost": 250.0, "flexsaldo": 10.0, "flexsaldoDate": "2019-10-31", "mileCompensation": 0.0,
     "startDate": None, "endDate": None, "priceListId": "1378574519816", "agendaListNumber": 0},
    {"userName": "johnnyboy", "longUserName": "johnnyboy", "firstName": "John", "lastName": "Smith",
     "emailAdress": "johnnyboy@twentyonepilots.org", "employeeNumber": "", "nationalIDNumber": "197701017777",
     "userType": "CUSR", "corpid": "556423-2121 ", "partTime": 0, "isActive": True, "locale": "sv_SE",
     "workgroup": "", "costcenter": "", "department": "", "team": "", "hourcost": 0.0, "flexsaldo": 0.0,
     "flexsaldoDate": None, "mileCompensation": 0.0, "startDate": None, "endDate": None, "priceListId": None,
     "agendaListNumber": 0},
    # Users that only appear in entries (TT:619, 568): name and id as printed.
    {"userName": "PerAdm", "firstName": "Per", "lastName": "Andersson"},
    {"userName": "fiamia", "firstName": "Fia", "lastName": "Svartenbrant"},
]

#: GET /v1/projects (XML, TT:265-358). The second project's elided fields ("...", TT:316) are blank.
PROJECTS: list[dict[str, Any]] = [
    {"name": "ABC-analys Hedgehog", "projid": "1455109526722",
     "description": "Analys av kostnader hos Hedgehog för lönsamhetsberäkning enligt ABC-metoden.",
     "internalDescription": "Glöm inte att tidrapportera senast varje fredag för detta projekt. "
                            "Ring Per om du har någraa frågor.",
     "isActive": True, "projectLead": "PerAdm", "ourAccount": "Olles grupp", "ourCategory": "Löpande räkning",
     "ourResultArea": "Sverige", "hourRate": 990, "mileRate": 35, "ourReference": "Anna Andersson",
     "invoiceCorpname": "Hedgehog AB", "invoiceCustno": "54556", "invoiceRefname": "Johan Carlsson",
     "invoiceEmail": "info@hedgehog.se", "invoicePhone": "08-660 08 70", "invoiceAdrrow1": "Järngatan 5",
     "invoiceAdrrow2": "234 56", "invoiceAdrrow3": "Vässterås", "invoiceAdrrow4": "", "invoiceAdrrow5": "",
     "invoicePaydays": 20, "invoiceAltBankAccount": "", "invoiceAltPayCondition": "", "invoiceCustomerVATno": "",
     "accountNumber": "", "startDate": "2016-03-01", "isOtherCurrActive": True, "otherCurrency": "SEK",
     "conversionRate": 1, "otherCurrHourRate": 990, "otherCurrMileRate": 35, "invoiceLang": "en_GB",
     "billing": "HOUR_RATE", "priceMode": "PRICE_IN_PROJECT", "priceListId": "", "vatStatus": 1,
     "created": "2016-02-10 14:05", "changed": "2022-09-06 13:18",
     "members": ["PerAdm", "annatictacse"]},  # members: not in the document
    {"name": "Aduro Intranet", "projid": "1137768437234",
     "description": "En ny funtionalitet i interna webben för prissttning av deras tjänster.",
     "internalDescription": "Motpart: Volvo AB, 55665577-6464", "isActive": True, "projectLead": "kjelleson",
     "priceListId": "", "vatStatus": 1, "fixedPrice": 1800000,
     "created": "2006-01-20 15:47", "changed": "2022-08-18 11:27",
     "members": ["PerAdm"]},  # members: not in the document
    # Projects that only appear in entries, reports and timeplans (name and projid as printed).
    {"name": "ElectroSound", "projid": "1567771889595", "members": ["fiamia"]},  # TT:570
    {"name": "Film till webbsidan", "projid": "1447077260817"},  # TT:618
    {"name": "Apollo Market", "projid": "1441032326122"},  # TT:960, timeplans TT:867
    {"name": "FRÅNVARO", "projid": "1137703186406"},  # TT:952 (Tic-Tac's absence project)
    # The GET /v1/activities sample asks for projectId=3265353621 (TT:408); its name is not shown.
    {"name": "Interna aktiviteter", "projid": "3265353621"},  # name: not in the document
]

#: Activities: inline in the project sample (TT:322-357), GET /v1/activities (TT:414-437), and those
#: named only by an entry's ``projectname`` "Project/Activity" and ``actid``.
ACTIVITIES: list[dict[str, Any]] = [
    {"projid": "1137768437234", "name": "Art direction", "actid": "1259853648654", "type": "WORKHOURS",
     "description": "Form, layout, skisser", "hourRate": 1200, "priceMode": "PRICE_IN_PROJECT", "priceListId": "",
     "accountNumber": "", "isActive": True},
    {"projid": "1137768437234", "name": "Implementation", "actid": "1137768502203", "type": "WORKHOURS",
     "description": "Design och kodning av systemet", "hourRate": 900, "priceMode": "PRICE_IN_PROJECT",
     "priceListId": "", "accountNumber": "", "isActive": True},
    {"projid": "1137768437234", "name": "Intervju och analys", "actid": "1165686036718", "type": "WORKHOURS",
     "description": "Kartläggning av verksamheten", "hourRate": 740, "priceMode": "PRICE_IN_PROJECT",
     "priceListId": "", "accountNumber": "", "isActive": True},
    {"projid": "1137768437234", "name": "Testning", "actid": "1422952089527"},  # TT:757
    {"projid": "3265353621", "name": "Administration", "actid": "1607954983993", "description": "Form, layout",
     "hourRate": 0.0, "otherCurrHourRate": 0.0, "accountNumber": "3010", "isActive": True, "type": "WORKHOURS",
     "priceMode": "PRICE_IN_PROJECT", "priceListId": ""},
    {"projid": "3265353621", "name": "Development", "actid": "1607955713079", "description": "Diverse",
     "hourRate": 0.0, "otherCurrHourRate": 0.0, "accountNumber": "3010", "isActive": True, "type": "WORKHOURS",
     "priceMode": "PRICE_IN_PROJECT", "priceListId": ""},
    {"projid": "1455109526722", "name": "Redovisning", "actid": "1455109932972"},  # TT:630
    {"projid": "1455109526722", "name": "Tillägg", "actid": "1482332413454"},  # TT:642
    {"projid": "1567771889595", "name": "01 - Projektarbete", "actid": "1567771980580"},  # TT:570
    {"projid": "1567771889595", "name": "02 - Analys", "actid": "1567771990799"},  # TT:584
    {"projid": "1447077260817", "name": "Analys", "actid": "1447077927832"},  # TT:618
    {"projid": "1441032326122", "name": "Analys", "actid": "1441032358950"},  # timeplans TT:867
    # The absence project's activities are not shown anywhere in the document.
    {"projid": "1137703186406", "name": "Semester", "actid": "1137703186501"},  # not in the document
    {"projid": "1137703186406", "name": "Sjukdom", "actid": "1137703186502"},  # not in the document
]

#: Entries. ``projectname`` and ``username`` are derived at read time from the project, activity
#: and user, exactly as the samples show them ("ElectroSound/01 - Projektarbete", "Fia Svartenbrant").
ENTRIES: list[dict[str, Any]] = [
    # GET /v2/entries, JSON (TT:704-749)
    {"type": "TicTacTime", "userid": "fiamia", "rowid": "1604592475583", "projid": "1567771889595",
     "actid": "1567771980580", "date": "2020-11-03", "spec": "Mera", "hours": "1.0", "attested": True,
     "invoiced": True},
    {"type": "TicTacTime", "userid": "fiamia", "rowid": "1604592252254", "projid": "1567771889595",
     "actid": "1567771990799", "date": "2020-11-03", "spec": "rerer", "hours": "0.5", "attested": True,
     "invoiced": True},
    {"type": "TicTacCost", "userid": "fiamia", "rowid": "1604491998604", "projid": "1567771889595",
     "actid": "1567771980580", "date": "2020-11-04", "spec": "Utlägg [892]454", "costvatexcl": "44.0",
     "costvatincl": "55.0", "attested": True, "invoiced": True},
    # GET /v2/entries, XML (TT:752-810)
    {"type": "TicTacTime", "userid": "PerAdm", "rowid": "1605175001865", "projid": "1137768437234",
     "actid": "1422952089527", "date": "2020-11-10", "spec": "", "hours": "7.0", "attested": True, "invoiced": True},
    {"type": "TicTacTime", "userid": "PerAdm", "rowid": "1605175003698", "projid": "1137768437234",
     "actid": "1422952089527", "date": "2020-11-11", "spec": "", "hours": "5.5", "attested": True, "invoiced": True},
    {"type": "TicTacMile", "userid": "PerAdm", "rowid": "1605601473085", "projid": "1137768437234",
     "actid": "1422952089527", "date": "2020-11-17", "spec": "Körde bil", "distance": "333.0", "attested": True,
     "invoiced": True},
    {"type": "TicTacSale", "userid": "PerAdm", "rowid": "1561369429588", "projid": "1137768437234",
     "actid": "1259853648654", "date": "2020-11-24", "spec": "13 Avtal per månad", "amount": "1.0",
     "attested": True, "invoiced": True},
    # GET /v1/entries, XML (TT:613-654). The second row has no <date> in the document; it sits
    # between a 2022-01-01 and a 2022-01-02 row, so the sandbox dates it 2022-01-01.
    {"type": "TicTacSale", "userid": "PerAdm", "rowid": "1489660871091", "projid": "1447077260817",
     "actid": "1447077927832", "date": "2022-01-01", "spec": "NordicInk AB fakturanr 202201 2022-01-18",
     "amount": "1.0", "attested": False, "invoiced": False},
    {"type": "TicTacTime", "userid": "annatictacse", "rowid": "1483534828305", "projid": "1455109526722",
     "actid": "1455109932972", "date": "2022-01-01", "spec": "", "hours": "8.0", "attested": True,
     "invoiced": True},
    {"type": "TicTacTime", "userid": "PerAdm", "rowid": "1483534736117", "projid": "1455109526722",
     "actid": "1482332413454", "date": "2022-01-02", "spec": "Startmöte inför nya årett", "hours": "3.0",
     "attested": True, "invoiced": True},
    # Invoice sample, activity "Art direction" (TT:1152-1172): Time rows, attested.
    {"type": "TicTacTime", "userid": "PerAdm", "rowid": "1504276401628", "projid": "1137768437234",
     "actid": "1259853648654", "date": "2022-09-01", "spec": "", "hours": "0.5", "attested": True,
     "invoiced": True},
    {"type": "TicTacTime", "userid": "PerAdm", "rowid": "1504612490282", "projid": "1137768437234",
     "actid": "1259853648654", "date": "2022-09-05", "spec": "Test", "hours": "8.0", "attested": True,
     "invoiced": True},
]

#: The API code a sandbox accepts unless told otherwise is built in ``sandbox.tictac`` (a JWT).
COMPANY = {"corpid": "556423-2121 ", "companyName": "Astralux AB"}  # TT:1125, invoice head

__all__ = ["ACTIVITIES", "COMPANY", "ENTRIES", "PROJECTS", "USERS"]


# --- a company set up by hand before TimeBridge (not from the document) -------------------------------
#: ``POST /_sandbox/reset {"company": "hand_made"}``: what a customer's Tic-Tac looks like on the day
#: TimeBridge arrives — users, projects and activities made in Tic-Tac's own screens, with the ERP's
#: numbers typed in by hand (Danish and Norwegian company names with "A/S" and "AS/"), one user and
#: one project without a number, an absence project, and attested and unattested registrations.
#: None of it was made through the API, and nothing here knows TimeBridge's cross-references.
HAND_MADE_USERS: list[dict[str, Any]] = [
    {"userName": "mettehansendk", "longUserName": "mette@hansen.dk", "firstName": "Mette", "lastName": "Hansen",
     "emailAdress": "mette@hansen.dk", "employeeNumber": "1001", "department": "Montage"},
    {"userName": "olenielsen", "firstName": "Ole", "lastName": "Nielsen", "emailAdress": "ole@hansen.dk",
     "employeeNumber": "1002", "department": "Montage"},
    {"userName": "kariolsen", "firstName": "Kari", "lastName": "Olsen", "emailAdress": "kari@nordbyg.no",
     "employeeNumber": "1003"},
    {"userName": "lars", "firstName": "Lars", "lastName": "Berg", "emailAdress": "lars@hansen.dk",
     "employeeNumber": ""},  # made by hand without an employee number
]
HAND_MADE_PROJECTS: list[dict[str, Any]] = [
    {"projid": "7000000000001", "name": "Hansen A/S – Tilbygning", "projectNumber": "P-100",
     "description": "Tilbygning, lager"},
    {"projid": "7000000000002", "name": "Nordbyg AS/Oslo – Renovering", "projectNumber": "P-200"},
    {"projid": "7000000000003", "name": "Fravær", "projectNumber": "FRAVAER"},
    {"projid": "7000000000004", "name": "Diverse", "projectNumber": ""},  # no number
]
HAND_MADE_ACTIVITIES: list[dict[str, Any]] = [
    {"actid": "7100000000001", "projid": "7000000000001", "name": "Montage", "type": "WORKHOURS"},
    {"actid": "7100000000002", "projid": "7000000000001", "name": "Nedrivning", "type": "WORKHOURS"},
    {"actid": "7100000000003", "projid": "7000000000001", "name": "Overtid", "type": "OVERTIME"},
    {"actid": "7100000000004", "projid": "7000000000002", "name": "Maling", "type": "WORKHOURS"},
    {"actid": "7100000000005", "projid": "7000000000003", "name": "Sygdom", "type": "ABSENCE"},
    {"actid": "7100000000006", "projid": "7000000000004", "name": "Oprydning", "type": "WORKHOURS"},
]


def hand_made_entries(day: str) -> list[dict[str, Any]]:
    """Registrations of the hand-made company on ``day`` (ISO date): five attested, one not."""
    def row(rowid: str, user: str, projid: str, actid: str, hours: str, attested: bool, spec: str) -> dict[str, Any]:
        return {"rowid": rowid, "type": "TicTacTime", "userid": user, "projid": projid, "actid": actid,
                "date": day, "hours": hours, "spec": spec, "attested": attested, "changed": f"{day}T16:00:00"}
    return [
        row("7200000000001", "mettehansendk", "7000000000001", "7100000000001", "7.5", True, "Montage af spær"),
        row("7200000000002", "olenielsen", "7000000000001", "7100000000002", "6", True, ""),
        row("7200000000003", "olenielsen", "7000000000001", "7100000000003", "2", True, "Overtid"),
        row("7200000000004", "kariolsen", "7000000000002", "7100000000004", "8", True, "Maling 2. sal"),
        row("7200000000005", "mettehansendk", "7000000000003", "7100000000005", "7.5", True, ""),
        row("7200000000006", "kariolsen", "7000000000002", "7100000000004", "3", False, "ikke godkendt"),
        row("7200000000007", "lars", "7000000000001", "7100000000001", "4", True, "uden medarbejdernummer"),
        row("7200000000008", "mettehansendk", "7000000000004", "7100000000006", "1", True, "uden projektnummer"),
    ]
