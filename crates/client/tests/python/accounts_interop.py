# Local accounts both ways with specklepy. SPECKLE_USERDATA_PATH points at the test's folder.
# 1. The account the Rust SDK saved is found by get_local_accounts()/get_default_account() and
#    authenticates with specklepy.
# 2. An account is written in the SDKs' format through specklepy's own SQLiteTransport (the
#    Rust side then reads it and authenticates).
import json
import os

from specklepy.api.client import SpeckleClient
from specklepy.api.credentials import get_default_account, get_local_accounts
from specklepy.core.helpers import speckle_path_provider
from specklepy.transports.sqlite import SQLiteTransport

host = os.environ["TESSERA_HOST"]
accounts = get_local_accounts()
assert [a.userInfo.email for a in accounts] == [os.environ["RUST_EMAIL"]], accounts
default = get_default_account()
assert default.isDefault and default.token, default
assert default.serverInfo.url == f"http://{host}", default.serverInfo.url
client = SpeckleClient(host=host, use_ssl=False)
client.authenticate_with_account(default)
me = client.active_user.get()
assert me.email == os.environ["RUST_EMAIL"], me

account = {
    "id": "PY0ACCOUNT",
    "token": os.environ["PY_TOKEN"],
    "refreshToken": None,
    "isDefault": False,
    "serverInfo": {"name": "Tessera", "url": f"http://{host}", "company": None},
    "userInfo": {"id": os.environ["PY_USER_ID"], "name": "Py Writer", "email": os.environ["PY_EMAIL"]},
}
store = SQLiteTransport(
    base_path=str(speckle_path_provider.user_speckle_folder_path()), scope="Accounts"
)
store.save_object(account["id"], json.dumps(account))
store.save_current_batch()
store.close()
print("all checks passed")
