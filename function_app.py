"""TimeBridge function app: registers the Blueprints. Must import cleanly with an empty environment
(an import error hides every function in Azure), so nothing here reads settings or secrets."""

import azure.functions as func

from functions.export_ledger import bp as export_blueprint
from functions.import_file import bp as import_blueprint

app = func.FunctionApp()
app.register_functions(import_blueprint)
app.register_functions(export_blueprint)
