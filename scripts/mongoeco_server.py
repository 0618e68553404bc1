"""Serve the MongoDB wire protocol with mongoeco (run by a Python >= 3.13 that has it).

    python scripts/mongoeco_server.py PORT [DATABASE_FILE]

Without a file the data lives in memory (the test server of scripts/services.sh); with one it
is kept in that SQLite file and survives a restart (the crash test of tests/test_backends.py).
With ``MONGOECO_USER=name:password`` in the environment, clients must authenticate as that user
(SCRAM-SHA-256, ``authSource=admin``); without it the server has no users (the password tests
of tests/test_backends.py). Listens on 127.0.0.1 until killed. Port 0 lets the system choose a
free port; either way the port listened on is printed as one line once the server accepts
connections.
"""

import asyncio
import os
import sys


async def serve(port: int, path: str | None) -> None:
    from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

    engine = None
    if path is not None:
        from mongoeco.engines.sqlite import SQLiteEngine

        engine = SQLiteEngine(path)
    users = ()
    if os.environ.get("MONGOECO_USER"):
        from mongoeco.wire.auth import WireAuthUser

        name, _, password = os.environ["MONGOECO_USER"].partition(":")
        root = {"role": "root", "db": "admin"}
        users = (WireAuthUser(name, password, source="admin", roles=(root,)),)
    server = AsyncMongoEcoProxyServer(engine=engine, host="127.0.0.1", port=port, auth_users=users)
    address = await server.start()
    print(address.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
