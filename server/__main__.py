"""`python -m server [--host 127.0.0.1] [--port 7860]`: start the Open3DForge server."""

from __future__ import annotations

import argparse
import logging

from .api import ForgeApi
from .app import build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api = ForgeApi()
    app = build_app(api)
    logging.getLogger("open3dforge").info("workspace: %s", api.settings.workspace)
    app.launch(server_name=args.host, server_port=args.port, allowed_paths=[str(api.settings.workspace)],
               show_error=True, share=False)


if __name__ == "__main__":
    main()
