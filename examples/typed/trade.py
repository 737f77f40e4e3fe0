"""examples/trade.py with typed calls (TypedDicts from deriv_sdk.api.v3_types): mypy
--strict checks every field name and type. Token: DERIV_TOKEN (with --local, "test-token")."""

import argparse
import os
import threading
from typing import TYPE_CHECKING

from deriv_sdk import Connection
from deriv_sdk.api import LegacyAPI

if TYPE_CHECKING:  # types for mypy and the editor only: importing them at run time costs 0.1 s
    from deriv_sdk.api.v3_types import ProposalOpenContractResponse


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
            api = LegacyAPI(conn)
            account = api.authorize(token)["authorize"]
            print("balance before:", account["balance"], account["currency"])
            proposal = api.proposal(
                contract_type="CALL", currency=account["currency"], symbol="R_100",
                amount=10, basis="stake", duration=5, duration_unit="t",
            )["proposal"]  # fmt: skip
            bought = api.buy(proposal["id"], price=proposal["ask_price"])["buy"]
            print("bought contract", bought["contract_id"], "for", bought["buy_price"])
            ended = threading.Event()

            def follow(message: "ProposalOpenContractResponse") -> None:  # dispatch thread
                poc = message["proposal_open_contract"]
                print(f"  spot {poc.get('current_spot')} profit {poc.get('profit')}")
                if poc.get("is_sold"):
                    print("result:", poc["status"], "sold for", poc["sell_price"])
                    ended.set()

            api.proposal_open_contract(contract_id=bought["contract_id"], listener=follow)
            if not ended.wait(120):  # the server ends the stream when the contract ends
                return 1
            print("balance after:", api.balance()["balance"]["balance"])
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
