"""A demo trade on Deriv's new API: REST finds the demo account, its socket trades.

Your PAT in DERIV_TOKEN, your app id in DERIV_APP_ID or --app-id (--local: test-pat)."""

import argparse
import os
import threading

from deriv_sdk import Connection, RestClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Buy a 5-tick CALL on R_100 on a demo account.")
    parser.add_argument("--app-id", default=os.environ.get("DERIV_APP_ID"), help="your app id")
    parser.add_argument("--rest-url", default="https://api.derivws.com", help="REST base URL")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    pat, app_id, server = os.environ.get("DERIV_TOKEN"), args.app_id, None
    if args.local:
        from deriv_sdk.testing import LocalServer

        pat, app_id = "test-pat", "any-app-id"  # a LocalServer takes any app id
        server = LocalServer(pats=[pat], tick_interval=0.1).start()
    elif not pat or not app_id:
        parser.error("set DERIV_TOKEN (a PAT) and DERIV_APP_ID (or --app-id), or use --local")
    try:
        rest = RestClient(app_id, pat, base_url=server.rest_url if server else args.rest_url)
        demo = next(a for a in rest.accounts() if a["account_type"] == "demo")
        with Connection.options(demo["account_id"], rest=rest) as conn:  # a fresh OTP URL
            balance = conn.request({"balance": 1})["balance"]
            print("balance before:", balance["balance"], balance["currency"], demo["account_id"])
            proposal = conn.request({
                "proposal": 1, "underlying_symbol": "R_100", "contract_type": "CALL",
                "amount": 10, "basis": "stake", "currency": balance["currency"],
                "duration": 5, "duration_unit": "t",
            })["proposal"]  # fmt: skip
            bought = conn.request({"buy": proposal["id"], "price": proposal["ask_price"]})["buy"]
            print("bought contract", bought["contract_id"], "for", bought["buy_price"])
            ended = threading.Event()

            def follow(message):  # dispatch thread: every update until the contract is sold
                poc = message["proposal_open_contract"]
                print(f"  spot {poc.get('current_spot')} profit {poc.get('profit')}")
                if poc.get("is_sold"):
                    print("result:", poc["status"], "sold for", poc["sell_price"])
                    ended.set()

            poc = {"proposal_open_contract": 1, "contract_id": bought["contract_id"]}
            conn.subscribe(poc, follow)  # the server ends this stream when the contract ends
            if not ended.wait(120):
                return 1
            print("balance after:", conn.request({"balance": 1})["balance"]["balance"])
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
