"""``mskai serve [IMAGE]``: the web viewer on this machine (localhost unless ``--host``).

Every page needs the token printed in its URL (a new random one unless ``--token``), so
with ``--host`` (to reach the page from another machine) nobody without the URL can drive
the scene. Rendering is off-screen (EGL when there is no display).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mskai.errors import InputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_OUT = Path("mskai-web-output")
OFFSCREEN_WINDOW = "vtkEGLRenderWindow"


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web viewer: the three modules in a browser (trame-slicer)")
    p.add_argument("image", type=Path, nargs="?", default=None,
                   help="image to open (file or DICOM folder); or open one in the page")
    p.add_argument("--series", metavar="UID", default=None,
                   help="SeriesInstanceUID to read when the DICOM folder holds several series")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default 127.0.0.1: this machine only); "
                        "another address exposes the page, still behind the token")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                   help="port (default 8080; 0 picks a free one)")
    p.add_argument("--token", default=None,
                   help="the page's secret (default: a new random one, printed in the URL)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="where Export writes (one folder per module; default "
                        "mskai-web-output)")


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return value


def check_token(token: str | None) -> str:
    """The given token (long enough to guess no faster than a random one), or a new one."""
    from mskai.web.auth import new_token

    if token is None:
        return new_token()
    if len(token) < 16 or not token.replace("-", "").replace("_", "").isalnum():
        raise InputError("--token must be at least 16 letters, digits, '-' or '_'; leave it "
                         "out to get a random one")
    return token


def use_offscreen_rendering() -> None:
    """Without a display, VTK renders through EGL (Mesa's software EGL on a CPU machine)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", OFFSCREEN_WINDOW)


def run_serve(args: argparse.Namespace) -> int:
    """Start the page and serve until interrupted; prints the URL first."""
    from mskai.web.auth import is_loopback, page_url

    token = check_token(args.token)
    volume = None
    if args.image is not None:
        from mskai.image import read_image

        volume = read_image(args.image, series_uid=args.series)
    if not is_loopback(args.host):
        print(f"warning: the page listens on {args.host}: anyone who can reach this machine "
              "and has the URL (its token) can open and change the images", file=sys.stderr)
    use_offscreen_rendering()
    work = Path(tempfile.mkdtemp(prefix="mskai-web-"))
    try:
        server = build_server(volume, args.image, work, args.out)
        server.controller.on_server_ready.add(lambda **_: print(
            f"MSK AI web viewer: {page_url(args.host, server.port, token)}", flush=True))
        sys.argv = [sys.argv[0], "--authKey", token, "--server"]
        server.start(port=args.port, host=args.host, open_browser=False,
                     show_connection_info=False, timeout=0, disable_logging=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def build_server(volume, image_path: Path | None, work: Path, out: Path):
    """A trame server holding the app, with ``volume`` open when given."""
    from trame.app import get_server

    from mskai.web.app import MSKAIWebApp

    server = get_server("mskai", client_type="vue3")
    app = MSKAIWebApp(server, work, out)
    if volume is not None:
        name = image_path.name.split(".")[0] if image_path is not None else "image"
        app.open_volume(volume, name)
    return server
