"""A whole trade: authorize, price a contract, buy it, follow it to its end.

Uses the token in DERIV_TOKEN (with --local, "test-token" when unset). Against the real
server, use a virtual (demo) account's token: this buys a contract. Try ``--local``.
"""

import argparse
import os
import threading

from deriv_sdk import Connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Buy a 5-tick CALL on R_100 and follow it.")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    token = os.environ.get("DERIV_TOKEN") or ("test-token" if args.local else None)
    if token is None:
        parser.error("set DERIV_TOKEN (a demo account's API token), or use --local")
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer(tokens=[token], tick_interval=0.1).start()
    try:
        with Connection(url=server.url if server else args.url) as conn:
            account = conn.authorize(token)["authorize"]
            print("balance before:", account["balance"], account["currency"])
            proposal = conn.request({
                "proposal": 1, "amount": 10, "basis": "stake", "contract_type": "CALL",
                "currency": account["currency"], "duration": 5, "duration_unit": "t",
                "symbol": "R_100",
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
