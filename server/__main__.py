"""`python -m server [--host 127.0.0.1] [--port 7860] [--trusted-network]`: start the Open3DForge server.

With O3F_TOKEN (or O3F_TOKEN_FILE) set, every request must carry that token; listening beyond loopback
without one is refused unless --trusted-network says everyone who can reach the address may use it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .api import ForgeApi
from .app import build_app, launch_options
from .auth import AuthSetupError, TokenMiddleware, check_exposure, load_token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--trusted-network", action="store_true",
                        help="allow listening beyond loopback without O3F_TOKEN (everyone who can reach it may use it)")
    args = parser.parse_args(argv)
    try:
        token = load_token()
        check_exposure(args.host, token, args.trusted_network)
    except AuthSetupError as exc:
        sys.exit(f"python -m server: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api = ForgeApi()
    app = build_app(api)
    log = logging.getLogger("open3dforge")
    log.info("workspace: %s", api.settings.workspace)
    app_kwargs = {}
    if token is not None:
        from starlette.middleware import Middleware

        app_kwargs["middleware"] = [Middleware(TokenMiddleware, token=token)]
        log.info("access token required on every request")
    app.launch(server_name=args.host, server_port=args.port, share=False, app_kwargs=app_kwargs,
               **launch_options(api))


if __name__ == "__main__":
    main()
