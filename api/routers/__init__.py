"""The API's routers, one per audience: operators, parties, admins, public; and the HTML pages."""
