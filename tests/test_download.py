"""The download used by real-data presets, against a local HTTP server."""

import hashlib
import http.server
import socket
import threading
from functools import partial

import numpy as np
import pytest
from astropy.io import fits

from starclusters.errors import InputFileError
from starclusters.mosaic.download import download


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A loopback HTTP server serving a small FITS file."""
    root = tmp_path_factory.mktemp("served")
    fits.PrimaryHDU(np.arange(100, dtype=np.float32).reshape(10, 10)).writeto(root / "band.fits")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def test_downloads_and_checks_the_checksum(server, tmp_path):
    url, root = server
    digest = hashlib.sha256((root / "band.fits").read_bytes()).hexdigest()
    path = download(f"{url}/band.fits", tmp_path / "F336W.fits", sha256=digest, progress=False)
    assert fits.getdata(path).sum() == 4950
    # a second call keeps the file
    assert download(f"{url}/band.fits", path, sha256=digest, progress=False) == path


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    url, _ = server
    with pytest.raises(InputFileError, match="checksum"):
        download(f"{url}/band.fits", tmp_path / "x.fits", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_and_offline(server, tmp_path):
    url, _ = server
    with pytest.raises(InputFileError, match="put it at"):
        download(f"{url}/nothing.fits", tmp_path / "y.fits", progress=False)
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(InputFileError, match="offline"):
        download(
            f"http://127.0.0.1:{closed}/band.fits", tmp_path / "z.fits", timeout_s=2, progress=False
        )
    assert list(tmp_path.iterdir()) == []
