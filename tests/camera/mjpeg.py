"""A real MJPEG-over-HTTP camera on 127.0.0.1 (multipart/x-mixed-replace, as IP cameras serve it).

It can be stopped (open connections are cut) and started again on the same port, to make a
stream drop and come back.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

BOUNDARY = "edgeagentframe"


class MjpegCamera:
    def __init__(self, frames: list[npt.NDArray[Any]], *, fps: float = 15.0, port: int = 0) -> None:
        self.jpegs = [bytes(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1]) for f in frames]
        self.fps = fps
        self.port = port
        self.clients = 0
        self.frames_sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegCamera:
        camera = self
        self._stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with camera._lock:
                    camera.clients += 1
                    camera._sockets.append(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                i = 0
                try:
                    while not camera._stopping.is_set():
                        jpeg = camera.jpegs[i % len(camera.jpegs)]
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        camera.frames_sent += 1
                        i += 1
                        if camera._stopping.wait(1.0 / camera.fps):
                            break
                except OSError:
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open stream (the camera goes away)."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._sockets.clear()
        if self._thread is not None:
            self._thread.join(2)


def blank(width: int = 640, height: int = 480) -> npt.NDArray[np.uint8]:
    return np.full((height, width, 3), 200, np.uint8)
