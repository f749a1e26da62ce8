"""A small multi-instance chat server.

Every message of a room gets the room's next ``sequence_id`` from a shared
SQLite database; every instance publishes what it stored on Redis pub/sub
and forwards what it hears there to its own WebSocket clients. Clients that
fell behind read ``GET /rooms/{room}/messages?since=N``.

The wire format and the HTTP API are described in README.md next to this
file. Run ``python server.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
from datetime import datetime, timezone

import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

CHANNEL_PREFIX = "chat:room:"
MAX_ROOM_CHARS = 128
MAX_MESSAGE_CHARS = 16 * 1024
MAX_FRAME_BYTES = 64 * 1024
PAGE_LIMIT = 500
# A client whose socket cannot keep up is disconnected once this many frames
# wait for it, instead of holding memory without bound.
OUTBOX_FRAMES = 10_000
SUBSCRIBE_WITHIN_SECONDS = 10.0

log = logging.getLogger("chat")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_room(room: object) -> bool:
    return isinstance(room, str) and 0 < len(room) <= MAX_ROOM_CHARS


class Gone(Exception):
    """The messages asked for were deleted by retention."""

    def __init__(self, earliest: int) -> None:
        super().__init__(earliest)
        self.earliest = earliest


class Store:
    """Messages in SQLite, numbered per room.

    Several processes share the file: the next number is taken inside an
    immediate (write-locked) transaction, so two instances never hand out
    the same ``sequence_id``.
    """

    def __init__(self, path: str, retain: int) -> None:
        self.retain = retain
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS rooms ("
            " room TEXT PRIMARY KEY,"
            " last_sequence_id INTEGER NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " room TEXT NOT NULL,"
            " sequence_id INTEGER NOT NULL,"
            " user_id TEXT NOT NULL,"
            " message TEXT NOT NULL,"
            " timestamp TEXT NOT NULL,"
            " PRIMARY KEY (room, sequence_id))"
        )
        self.db.execute("COMMIT")

    def append(self, room: str, user_id: str, message: str) -> dict:
        timestamp = utc_now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            (sequence_id,) = self.db.execute(
                "INSERT INTO rooms (room, last_sequence_id) VALUES (?, 1)"
                " ON CONFLICT (room) DO UPDATE SET last_sequence_id = last_sequence_id + 1"
                " RETURNING last_sequence_id",
                (room,),
            ).fetchone()
            self.db.execute(
                "INSERT INTO messages (room, sequence_id, user_id, message, timestamp)"
                " VALUES (?, ?, ?, ?, ?)",
                (room, sequence_id, user_id, message, timestamp),
            )
            if self.retain > 0:
                self.db.execute(
                    "DELETE FROM messages WHERE room = ? AND sequence_id <= ?",
                    (room, sequence_id - self.retain),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return {
            "user_id": user_id,
            "sequence_id": sequence_id,
            "message": message,
            "timestamp": timestamp,
            "room": room,
        }

    def since(self, room: str, since: int, until: int | None, limit: int) -> list[dict]:
        """Messages after ``since`` (up to ``until``), oldest first, at most
        ``limit``. Raises ``Gone`` when retention deleted some of them."""
        # One read transaction: the range check and the rows see the same
        # state even while another instance deletes old messages.
        self.db.execute("BEGIN")
        try:
            (earliest,) = self.db.execute(
                "SELECT MIN(sequence_id) FROM messages WHERE room = ?", (room,)
            ).fetchone()
            if earliest is not None and since + 1 < earliest:
                raise Gone(earliest)
            rows = self.db.execute(
                "SELECT user_id, sequence_id, message, timestamp FROM messages"
                " WHERE room = ? AND sequence_id > ? AND sequence_id <= ?"
                " ORDER BY sequence_id LIMIT ?",
                (room, since, until if until is not None else 2**62, limit),
            ).fetchall()
        finally:
            self.db.execute("COMMIT")
        return [
            {
                "user_id": user_id,
                "sequence_id": sequence_id,
                "message": message,
                "timestamp": timestamp,
                "room": room,
            }
            for (user_id, sequence_id, message, timestamp) in rows
        ]

    def head(self, room: str) -> int:
        row = self.db.execute(
            "SELECT last_sequence_id FROM rooms WHERE room = ?", (room,)
        ).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        self.db.close()


class Connection:
    """One WebSocket client: its user, its rooms and its outgoing frames."""

    def __init__(self, ws: web.WebSocketResponse, user: str) -> None:
        self.ws = ws
        self.user = user
        self.rooms: set[str] = set()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_FRAMES)
        self.writer: asyncio.Task | None = None
        self.overflowed = False

    def start(self) -> None:
        self.writer = asyncio.create_task(self._write())

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.cancel()
            try:
                await self.writer
            except asyncio.CancelledError:
                pass

    def push(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("closing a client of %s: %d frames behind", self.user, OUTBOX_FRAMES)
            asyncio.create_task(
                self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too far behind")
            )

    def reply(self, frame: dict) -> None:
        self.push(json.dumps(frame))

    async def _write(self) -> None:
        while True:
            text = await self.outbox.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class Hub:
    """Which local connections are in which room."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def join(self, conn: Connection, room: str) -> None:
        conn.rooms.add(room)
        self.rooms.setdefault(room, set()).add(conn)

    def leave(self, conn: Connection, room: str) -> None:
        conn.rooms.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.rooms[room]

    def remove(self, conn: Connection) -> None:
        for room in list(conn.rooms):
            self.leave(conn, room)
        self.connections.discard(conn)

    def deliver(self, text: str) -> None:
        try:
            room = json.loads(text)["room"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed message from Redis: %.200s", text)
            return
        for conn in list(self.rooms.get(room, ())):
            conn.push(text)


class Fanout:
    """Redis pub/sub between instances: publish what this instance stored,
    forward what any instance stored to the local clients of its room."""

    def __init__(self, url: str, hub: Hub) -> None:
        self.redis = aioredis.from_url(url, decode_responses=True)
        self.hub = hub
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._subscribe())
        await asyncio.wait_for(self.subscribed.wait(), SUBSCRIBE_WITHIN_SECONDS)

    async def publish(self, stored: dict) -> None:
        # Fire and forget: the message is stored whatever happens here, and
        # clients that missed it read it from the history endpoint.
        try:
            await self.redis.publish(CHANNEL_PREFIX + stored["room"], json.dumps(stored))
        except (RedisError, OSError) as e:
            log.warning("publish of %s #%d failed: %s", stored["room"], stored["sequence_id"], e)

    async def _subscribe(self) -> None:
        delay = 0.05
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                async for item in pubsub.listen():
                    if item["type"] == "psubscribe":
                        log.info("subscribed to %s*", CHANNEL_PREFIX)
                        self.subscribed.set()
                        delay = 0.05
                    elif item["type"] == "pmessage":
                        self.hub.deliver(item["data"])
            except (RedisError, OSError) as e:
                log.warning("Redis subscription lost: %s", e)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        await self.redis.aclose()


def json_error(status: int, error: str, **extra: object) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


def int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = int(raw)
    if value < 0:
        raise ValueError(name)
    return value


async def get_messages(request: web.Request) -> web.Response:
    store: Store = request.app["store"]
    room = request.match_info["room"]
    try:
        since = int_param(request, "since", 0)
        until = int_param(request, "until", None)
        limit = int_param(request, "limit", PAGE_LIMIT)
    except ValueError:
        return json_error(400, "since, until and limit are non-negative integers")
    if limit == 0:
        return json_error(400, "limit must be at least 1")
    try:
        messages = store.since(room, since, until, min(limit, PAGE_LIMIT))
    except Gone as gone:
        return json_error(410, "gone", earliest_sequence_id=gone.earliest)
    return web.json_response({"messages": messages})


async def post_message(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    if not valid_room(room):
        return json_error(400, "invalid room")
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "the body is not JSON")
    if not isinstance(body, dict):
        return json_error(400, "the body is not a JSON object")
    user_id, message = body.get("user_id"), body.get("message")
    if not isinstance(user_id, str) or not isinstance(message, str):
        return json_error(400, "user_id and message are strings")
    if len(message) > MAX_MESSAGE_CHARS:
        return json_error(413, "message too long")
    stored = request.app["store"].append(room, user_id, message)
    await request.app["fanout"].publish(stored)
    return web.json_response(stored, status=201)


async def get_head(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    return web.json_response({"room": room, "sequence_id": request.app["store"].head(room)})


async def websocket(request: web.Request) -> web.StreamResponse:
    hub: Hub = request.app["hub"]
    room = request.match_info.get("room") or request.query.get("room")
    user = request.query.get("user") or "anonymous"
    if room is not None and not valid_room(room):
        return json_error(400, "invalid room")
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, timeout=2.0)
    if not ws.can_prepare(request).ok:
        return json_error(400, "WebSocket upgrade expected")
    conn = Connection(ws, user)
    # In the room before the handshake answer leaves: whatever is stored
    # after the client sees it connected reaches the client.
    hub.add(conn)
    if room is not None:
        hub.join(conn, room)
    try:
        await ws.prepare(request)
        conn.start()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await on_frame(request.app, conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.reply({"event": "error", "error": "text frames only"})
    finally:
        hub.remove(conn)
        await conn.stop()
    return ws


async def on_frame(app: web.Application, conn: Connection, text: str) -> None:
    try:
        frame = json.loads(text)
    except ValueError:
        conn.reply({"event": "error", "error": "invalid JSON"})
        return
    if not isinstance(frame, dict):
        conn.reply({"event": "error", "error": "a frame is a JSON object"})
        return
    action, room = frame.get("action"), frame.get("room")
    if action not in ("join", "leave", "send"):
        conn.reply({"event": "error", "error": "unknown action", "action": action})
        return
    if not valid_room(room):
        conn.reply({"event": "error", "error": "invalid room", "action": action})
        return
    if action == "join":
        app["hub"].join(conn, room)
    elif action == "leave":
        app["hub"].leave(conn, room)
    else:
        message, client_id = frame.get("message"), frame.get("client_id")
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
            conn.reply({"event": "error", "error": "invalid message", "client_id": client_id})
            return
        stored = app["store"].append(room, conn.user, message)
        conn.reply({"event": "sent", "client_id": client_id, "stored": stored})
        await app["fanout"].publish(stored)


async def close_clients(app: web.Application) -> None:
    hub: Hub = app["hub"]
    await asyncio.gather(
        *(
            conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            for conn in list(hub.connections)
        ),
        return_exceptions=True,
    )


def make_app(store: Store, hub: Hub, fanout: Fanout) -> web.Application:
    app = web.Application()
    app["store"], app["hub"], app["fanout"] = store, hub, fanout
    app.router.add_get("/ws", websocket)
    app.router.add_get("/rooms/{room}/ws", websocket)
    app.router.add_get("/rooms/{room}/messages", get_messages)
    app.router.add_post("/rooms/{room}/messages", post_message)
    app.router.add_get("/rooms/{room}/head", get_head)
    app.on_shutdown.append(close_clients)
    return app


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def serve(args: argparse.Namespace) -> None:
    store = Store(args.db, args.retain)
    hub = Hub()
    fanout = Fanout(args.redis, hub)
    try:
        await fanout.start()
    except asyncio.TimeoutError:
        log.error("no Redis subscription within %.0f s (%s)", SUBSCRIBE_WITHIN_SECONDS, args.redis)
        sys.exit(1)
    runner = web.AppRunner(
        make_app(store, hub, fanout), access_log=None, handle_signals=False, shutdown_timeout=5.0
    )
    await runner.setup()
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    await web.SockSite(runner, sock).start()
    print(f"ready http://{host}:{port}", flush=True)
    log.info("serving on %s:%d", host, port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    await fanout.close()
    store.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A multi-instance chat server.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument("--db", required=True, help="SQLite file shared by every instance")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument(
        "--instance", default=f"{socket.gethostname()}-{os.getpid()}", help="name in the logs"
    )
    parser.add_argument(
        "--retain",
        type=int,
        default=0,
        help="keep only the latest K messages of each room (0 keeps everything)",
    )
    args = parser.parse_args(argv)
    if args.retain < 0:
        parser.error("--retain must be 0 or more")
    return args


def main() -> None:
    args = parse_args(sys.argv[1:])
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {args.instance} %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
