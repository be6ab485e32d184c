"""The Tic-Tac Mobile API document's own samples, copied verbatim (``TT:a-b`` = its line numbers)
so the sandbox tests can compare the sandbox's answers with them.

Two JSON samples are not valid JSON in the document: the GET /v1/activities answer (TT:416-441)
and the GET /v2/entries answer (TT:704-749) never close their array (the latter ends with ``}``
instead of ``]}``). They are copied up to their last row and closed with ``]}`` here.
"""

from __future__ import annotations

#: GET /v1/users (TT:109-161)
USERS_JSON = '''\
[
{
"userName": "andersalm",
"longUserName": "andersalm",
"firstName": "Anders",
"lastName": "Alm",
"emailAdress": "info@zetera.se",
"employeeNumber": "1",
"nationalIDNumber": "197203210645",
"userType": "CPAD",
"corpid": "556423-2121 ",
"partTime": 0,
"isActive": true,
"locale": "sv_SE",
"workgroup": "Ledningsgruppen",
"costcenter": "Development",
"department": "Avd 2",
"team": "Team Beta",
"hourcost": 750.0,
"flexsaldo": 200.0,
"flexsaldoDate": "2019-08-01",
"mileCompensation": 0.0,
"startDate": null,
"endDate": null,
"priceListId": null,
"agendaListNumber": 0
},
{
"userName": "annatictacse",
"longUserName": "anna@tictac.se",
"firstName": "Anna",
"lastName": "Andersson",
"emailAdress": "anna@tictac.se",
"employeeNumber": "1298",
"nationalIDNumber": "196401012281",
"userType": "CADM",
"corpid": "556423-2121 ",
"partTime": 0,
"isActive": true,
"locale": "sv_SE",
"workgroup": "Konsulter",
"costcenter": "Development",
"department": "Avd 1",
"team": "Team Beta",
"hourcost": 250.0,
"flexsaldo": 10.0,
"flexsaldoDate": "2019-10-31",
"mileCompensation": 0.0,
"startDate": null,
"endDate": null,
"priceListId": "1378574519816",
"agendaListNumber": 0
}]
'''


#: GET /v1/users/johnnyboy (TT:168-193)
USER_JOHNNYBOY_JSON = '''\
{
"userName": "johnnyboy",
"longUserName": "johnnyboy",
"firstName": "John",
"lastName": "Smith",
"emailAdress": "johnnyboy@twentyonepilots.org",
"employeeNumber": "",
"nationalIDNumber": "197701017777",
"userType": "CUSR",
"corpid": "556423-2121 ",
"partTime": 0,
"isActive": true,
"locale": "sv_SE",
"workgroup": "",
"costcenter": "",
"department": "",
"team": "",
"hourcost": 0.0,
"flexsaldo": 0.0,
"flexsaldoDate": null,
"mileCompensation": 0.0,
"startDate": null,
"endDate": null,
"priceListId": null,
"agendaListNumber": 0
}
'''


#: POST /v1/users: the curl -d line (TT:200-200)
USER_POST_JSON = '''\
-d "{\"firstName\":\"John\", \"lastName\":\"Smith\", \"userName\":\"johnnyboy\", \"emailAdress\":\"johnnyboy@twentyonepilots.org\",\"phoneNumber\":\"07007070707\", \"nationalIDNumber\":\"197701017777\"}"
'''


#: POST /v1/users, XML body (TT:202-210)
USER_POST_XML = '''\
<?xml version="1.0" encoding="UTF-8" ?>
<userEntry>
<firstName>John</firstName>
<lastName>Smith</lastName>
<userName>johnnyboy</userName>
<emailAdress>johnnyboy@twentyonepilots.org</emailAdress>
<phoneNumber>07007070707</phoneNumber>
<nationalIDNumber>197701017777</nationalIDNumber>
</userEntry>
'''


#: POST /v1/projects: the curl -d line (TT:365-365)
PROJECT_POST_JSON = '''\
-d "{\"name\":\"Twenty Seconds to Mars\", \"customer\":\"SpaceY\", \"description\":\"Mars-focused mission\", \"hourRate\":\"900\",\"activities\":[{\"name\":\"Planning\",\"hourRate\":\"800\"},{\"name\":\"PR\",\"hourRate\":\"750\"}]}"
'''


#: POST /v1/projects, XML body (TT:367-381)
PROJECT_POST_XML = '''\
<?xml version="1.0" encoding="UTF-8" ?>
<project>
<name>Twenty Seconds to Mars</name>
<customer>SpaceY</customer>
<description>Mars-focused mission</description>
<hourRate>900</hourRate>
<activities>
<name>Planning</name>
<hourRate>800</hourRate>
</activities>
<activities>
<name>PR</name>
<hourRate>750</hourRate>
</activities>
</project>
'''


#: GET /v1/projects, XML: the first project (TT:265-308 + closing </TicTacProjects>)
PROJECTS_XML_FIRST = '''\
<?xml version="1.0" encoding="UTF-8" ?>
<TicTacProjects>
<TicTacProject>
<name>ABC-analys Hedgehog</name>
<projid>1455109526722</projid>
<description>Analys av kostnader hos Hedgehog för lönsamhetsberäkning enligt ABC-metoden.</description>
<internalDescription>Glöm inte att tidrapportera senast varje fredag för detta projekt. Ring Per om du har någraa frågor.</internalDescription>
<isActive>true</isActive>
<projectLead>PerAdm</projectLead>
<ourAccount>Olles grupp</ourAccount>
<ourCategory>Löpande räkning</ourCategory>
<ourResultArea>Sverige</ourResultArea>
<hourRate>990</hourRate>
<mileRate>35</mileRate>
<ourReference>Anna Andersson</ourReference>
<invoiceCorpname>Hedgehog AB</invoiceCorpname>
<invoiceCustno>54556</invoiceCustno>
<invoiceRefname>Johan Carlsson</invoiceRefname>
<invoiceEmail>info@hedgehog.se</invoiceEmail>
<invoicePhone>08-660 08 70</invoicePhone>
<invoiceAdrrow1>Järngatan 5</invoiceAdrrow1>
<invoiceAdrrow2>234 56</invoiceAdrrow2>
<invoiceAdrrow3>Vässterås</invoiceAdrrow3>
<invoiceAdrrow4></invoiceAdrrow4>
<invoiceAdrrow5></invoiceAdrrow5>
<invoicePaydays>20</invoicePaydays>
<invoiceAltBankAccount></invoiceAltBankAccount>
<invoiceAltPayCondition></invoiceAltPayCondition>
<invoiceCustomerVATno></invoiceCustomerVATno>
<accountNumber></accountNumber>
<startDate>2016-03-01</startDate>
<isOtherCurrActive>true</isOtherCurrActive>
<otherCurrency>SEK</otherCurrency>
<conversionRate>1</conversionRate>
<otherCurrHourRate>990</otherCurrHourRate>
<otherCurrMileRate>35</otherCurrMileRate>
<invoiceLang>en_GB</invoiceLang>
<billing>HOUR_RATE</billing>
<priceMode>PRICE_IN_PROJECT</priceMode>
<priceListId></priceListId>
<vatStatus>1</vatStatus>
<created>2016-02-10 14:05</created>
<changed>2022-09-06 13:18</changed>
</TicTacProject>
</TicTacProjects>
'''


#: GET /v1/projects, XML: Aduro Intranet's activities (TT:322-356)
ADURO_ACTIVITIES_XML = '''\
<Activities>
<Activity>
<name>Art direction</name>
<actid>1259853648654</actid>
<type>WORKHOURS</type>
<description>Form, layout, skisser</description>
<hourRate>1200</hourRate>
<priceMode>PRICE_IN_PROJECT</priceMode>
<priceListId></priceListId>
<accountNumber></accountNumber>
<isActive>true</isActive>
</Activity>
<Activity>
<name>Implementation</name>
<actid>1137768502203</actid>
<type>WORKHOURS</type>
<description>Design och kodning av systemet</description>
<hourRate>900</hourRate>
<priceMode>PRICE_IN_PROJECT</priceMode>
<priceListId></priceListId>
<accountNumber></accountNumber>
<isActive>true</isActive>
</Activity>
<Activity>
<name>Intervju och analys</name>
<actid>1165686036718</actid>
<type>WORKHOURS</type>
<description>Kartläggning av verksamheten</description>
<hourRate>740</hourRate>
<priceMode>PRICE_IN_PROJECT</priceMode>
<priceListId></priceListId>
<accountNumber></accountNumber>
<isActive>true</isActive>
</Activity>
</Activities>
'''


#: GET /v1/activities?projectId=3265353621 (TT:416-441 + closing ]})
ACTIVITIES_JSON = '''\
{
"activities": [
{
"name": "Administration",
"actid": "1607954983993",
"description": "Form, layout",
"hourRate": 0.0,
"otherCurrHourRate": 0.0,
"accountNumber": "3010",
"isActive": true,
"type": "WORKHOURS",
"priceMode": 0,
"priceListId": ""
},
{
"name": "Development",
"actid": "1607955713079",
"description": "Diverse",
"hourRate": 0.0,
"otherCurrHourRate": 0.0,
"accountNumber": "3010",
"isActive": true,
"type": "WORKHOURS",
"priceMode": 0,
"priceListId": ""
}
]}
'''


#: GET /v1/entries, XML (TT:613-653)
ENTRIES_V1_XML = '''\
<?xml version="1.0" encoding="UTF-8" ?>
<TicTacRows>
<TicTacSale>
<date>2022-01-01</date>
<rowid>1489660871091</rowid>
<username>Per Andersson</username>
<userid>PerAdm</userid>
<projectname>Film till webbsidan/Analys</projectname>
<projid>1447077260817</projid>
<actid>1447077927832</actid>
<spec>NordicInk AB fakturanr 202201 2022-01-18</spec>
<amount>1.0</amount>
<attested>false</attested>
<invoiced>false</invoiced>
</TicTacSale>
<TicTacTime>
<rowid>1483534828305</rowid>
<username>Anna Andersson</username>
<userid>annatictacse</userid>
<projectname>ABC-analys Hedgehog/Redovisning</projectname>
<projid>1455109526722</projid>
<actid>1455109932972</actid>
<spec></spec>
<hours>8.0</hours>
<attested>true</attested>
<invoiced>true</invoiced>
</TicTacTime>
<TicTacTime>
<date>2022-01-02</date>
<rowid>1483534736117</rowid>
<username>Per Andersson</username>
<userid>PerAdm</userid>
<projectname>ABC-analys Hedgehog/Tillägg</projectname>
<projid>1455109526722</projid>
<actid>1482332413454</actid>
<spec>Startmöte inför nya årett</spec>
<hours>3.0</hours>
<attested>true</attested>
<invoiced>true</invoiced>
</TicTacTime>
</TicTacRows>
'''


#: GET /v2/entries, JSON (TT:704-748 + closing ]})
ENTRIES_V2_JSON = '''\
{
"ticTacRows": [
{
"type": "TicTacTime",
"userid": "fiamia",
"rowid": "1604592475583",
"projectname": "ElectroSound/01 - Projektarbete",
"projid": "1567771889595",
"actid": "1567771980580",
"date": "2020-11-03",
"spec": "Mera",
"hours": "1.0",
"username": "Fia Svartenbrant",
"attested": true,
"invoiced": true
},
{
"type": "TicTacTime",
"userid": "fiamia",
"rowid": "1604592252254",
"projectname": "ElectroSound/02 - Analys",
"projid": "1567771889595",
"actid": "1567771990799",
"date": "2020-11-03",
"spec": "rerer",
"hours": "0.5",
"username": "Fia Svartenbrant",
"attested": true,
"invoiced": true
},
{
"type": "TicTacCost",
"userid": "fiamia",
"rowid": "1604491998604",
"projectname": "ElectroSound/01 - Projektarbete",
"projid": "1567771889595",
"actid": "1567771980580",
"date": "2020-11-04",
"spec": "Utlägg [892]454",
"costvatexcl": "44.0",
"costvatincl": "55.0",
"username": "Fia Svartenbrant",
"attested": true,
"invoiced": true
}
]}
'''


#: GET /v2/entries, XML (TT:752-810)
ENTRIES_V2_XML = '''\
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workItemModel>
<ticTacRows>
<type>TicTacTime</type>
<userid>PerAdm</userid>
<rowid>1605175001865</rowid>
<projectname>Aduro Intranet/Testning</projectname>
<projid>1137768437234</projid>
<actid>1422952089527</actid>
<date>2020-11-10</date>
<spec></spec>
<hours>7.0</hours>
<username>Per Andersson</username>
<attested>true</attested>
<invoiced>true</invoiced>
</ticTacRows>
<ticTacRows>
<type>TicTacTime</type>
<userid>PerAdm</userid>
<rowid>1605175003698</rowid>
<projectname>Aduro Intranet/Testning</projectname>
<projid>1137768437234</projid>
<actid>1422952089527</actid>
<date>2020-11-11</date>
<spec></spec>
<hours>5.5</hours>
<username>Per Andersson</username>
<attested>true</attested>
<invoiced>true</invoiced>
</ticTacRows>
<ticTacRows>
<type>TicTacMile</type>
<userid>PerAdm</userid>
<rowid>1605601473085</rowid>
<projectname>Aduro Intranet/Testning</projectname>
<projid>1137768437234</projid>
<actid>1422952089527</actid>
<date>2020-11-17</date>
<spec>Körde bil</spec>
<distance>333.0</distance>
<username>Per Andersson</username>
<attested>true</attested>
<invoiced>true</invoiced>
</ticTacRows>
<ticTacRows>
<type>TicTacSale</type>
<userid>PerAdm</userid>
<rowid>1561369429588</rowid>
<projectname>Aduro Intranet/Art direction</projectname>
<projid>1137768437234</projid>
<actid>1259853648654</actid>
<date>2020-11-24</date>
<spec>13 Avtal per månad</spec>
<amount>1.0</amount>
<username>Per Andersson</username>
<attested>true</attested>
<invoiced>true</invoiced>
</ticTacRows>
</workItemModel>
'''
