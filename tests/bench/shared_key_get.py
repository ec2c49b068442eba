"""Sign GET /pools/bench once with Shared Key, for a plain curl baseline:
prints the ocp-date on line 1 and the Authorization value on line 2.
usage: shared_key_get.py ACCOUNT KEY   (the emulator accepts a date within 15 minutes)"""
import base64
import email.utils
import hashlib
import hmac
import sys

acct, key = sys.argv[1], sys.argv[2]
date = email.utils.formatdate(usegmt=True)
sts = "GET\n" + "\n" * 11 + "ocp-date:" + date + "\n/" + acct + "/pools/bench\napi-version:2025-06-01"
sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
print(date)
print("SharedKey " + acct + ":" + sig)
