"""Demo: the appliance's main job on loopback, from enrollment to today's table.

Starts the reference recognizer and the ``edge-agent`` daemon (its embedded
defaults, with the data folder under ``.demo/``), enrolls two demo people,
registers two cameras, pushes simulated frames of those people and of
strangers for a while, prints each decision as it happens, and ends with
today's attendance read back through the API. Ctrl-C stops it cleanly.
Run it again and it reuses what the first run enrolled; ``--fresh`` wipes it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import time
from dataclasses import dataclass
from typing import Any

import httpx
from local_services import ROOT, edge_agent, reference_recognizer
from rich.console import Console
from rich.table import Table
from simulate_cameras import FrameResult, SimulationConfig, run_simulation
from synthetic_faces import encode_jpeg, face_image

API_KEY = "demo-recognition-key"

console = Console()


@dataclass(frozen=True)
class DemoPerson:
    identity: str
    employee_no: str
    name: str
    department: str


PEOPLE = [
    DemoPerson("alice", "E1001", "Alice Martin", "Engineering"),
    DemoPerson("bob", "E1002", "Bob Okafor", "Logistics"),
]
# An entry camera and a two-way one: each person is checked in once, and every
# later sighting within the duplicate window is shown as a duplicate.
CAMERAS = [("entrance", "Main entrance", "entry"), ("lobby", "Lobby", "both")]
OUTCOME_STYLE = {
    "marked": "bold green",
    "duplicate": "yellow",
    "unknown": "magenta",
    "no_face": "cyan",
    "rejected": "red",
}


def _ensure_person(api: httpx.Client, person: DemoPerson) -> str:
    users = api.get("/v1/users").raise_for_status().json()["users"]
    found = [u for u in users if u["employee_no"] == person.employee_no]
    if found:
        person_id: str = found[0]["id"]
    else:
        body = {
            "employee_no": person.employee_no,
            "name": person.name,
            "department": person.department,
        }
        person_id = api.post("/v1/users", json=body).raise_for_status().json()["id"]

    faces = api.get(f"/v1/users/{person_id}/faces").raise_for_status().json()["faces"]
    if not faces:
        image = encode_jpeg(face_image(person.identity))
        api.post(
            f"/v1/users/{person_id}/faces",
            content=image,
            headers={"Content-Type": "image/jpeg"},
        ).raise_for_status()
        console.print(f"Enrolled [bold]{person.name}[/] ({person.employee_no})")
    return person_id


def _ensure_cameras(api: httpx.Client) -> dict[str, str]:
    """Register the demo cameras (or give known ones a new key); their keys."""
    keys = {}
    for camera_id, name, direction in CAMERAS:
        body = {"id": camera_id, "name": name, "direction": direction}
        response = api.post("/v1/cameras", json=body)
        if response.status_code == 409:
            response = api.post(f"/v1/cameras/{camera_id}/keys", json={"grace_s": 0})
        keys[camera_id] = response.raise_for_status().json()["api_key"]
    return keys


def _print_result(result: FrameResult, names: dict[str, str]) -> None:
    stamp = time.strftime("%H:%M:%S")
    shown = names.get(result.identity, result.identity)
    if result.status not in (200, 202):
        title = result.body.get("title") or result.body.get("detail") or "no answer"
        console.print(
            f"{stamp} {result.camera_id:<9} {shown:<22} "
            f"[{OUTCOME_STYLE['rejected']}]rejected[/] HTTP {result.status}: {title}",
            no_wrap=True,
            overflow="ellipsis",
        )
        return
    for decision in result.body.get("decisions", []):
        _print_decision(stamp, result.camera_id, shown, decision)


def _print_decision(
    stamp: str, camera: str, shown: str, decision: dict[str, Any]
) -> None:
    outcome = decision["outcome"]
    style = OUTCOME_STYLE.get(outcome, "white")
    mark = decision.get("mark")
    kind = f" {mark['kind']}" if mark else ""
    similarity = decision.get("similarity")
    score = f" ({similarity:.3f})" if similarity is not None else ""
    reason = "" if outcome == "marked" else f" [dim]{decision['reason']}[/]"
    console.print(
        f"{stamp} {camera:<9} {shown:<22} [{style}]{outcome}{kind}[/]{score}{reason}",
        no_wrap=True,
        overflow="ellipsis",
    )


async def _simulate(
    config: SimulationConfig,
    edge_url: str,
    admin: dict[str, str],
    names: dict[str, str],
) -> None:
    """Run the cameras; follow each accepted frame until it is decided."""
    accepted: asyncio.Queue[FrameResult | None] = asyncio.Queue()

    def on_result(result: FrameResult) -> None:
        if result.status in (200, 202):
            accepted.put_nowait(result)
        else:
            _print_result(result, names)

    async with httpx.AsyncClient(base_url=edge_url, headers=admin) as client:
        follower = asyncio.create_task(
            _follow(client, accepted, names), name="demo-follower"
        )
        await run_simulation(config, on_result)
        accepted.put_nowait(None)
        await follower


async def _follow(
    client: httpx.AsyncClient,
    accepted: asyncio.Queue[FrameResult | None],
    names: dict[str, str],
) -> None:
    while (result := await accepted.get()) is not None:
        url = result.body["status_url"]
        for _ in range(100):
            body = (await client.get(url)).json()
            if body.get("state") == "decided":
                break
            await asyncio.sleep(0.1)
        _print_result(FrameResult(result.camera_id, result.identity, 200, body), names)


def _print_attendance(api: httpx.Client) -> None:
    body = api.get("/v1/attendance", params={"day": "today"}).raise_for_status().json()
    table = Table(title=f"Attendance on {body['day']}")
    for column in ("Time (UTC)", "Employee", "Name", "Kind", "Camera", "Similarity"):
        table.add_column(column)
    for row in body["attendance"]:
        table.add_row(
            row["marked_at"][11:19],
            row["employee_no"],
            row["name"],
            row["kind"],
            row["camera_id"],
            f"{row['similarity']:.3f}",
        )
    console.print(table)


def _run(args: argparse.Namespace) -> None:
    demo_dir = ROOT / ".demo"
    if args.fresh:
        shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(exist_ok=True)

    store = demo_dir / "recognizer.json"
    with reference_recognizer(demo_dir, API_KEY, store) as recognizer:
        data_dir = demo_dir / "data"
        with edge_agent(demo_dir, data_dir, recognizer.url, API_KEY) as edge:
            console.print(f"edge-agent on {edge.url}, recognizer on {recognizer.url}")
            console.print(f"Logs in {demo_dir}, database in {data_dir}")
            _exercise(edge.url, edge.admin_token, args)


def _exercise(edge_url: str, admin_token: str, args: argparse.Namespace) -> None:
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=edge_url, timeout=10, headers=admin) as api:
        names = {p.identity: p.name for p in PEOPLE}
        for person in PEOPLE:
            _ensure_person(api, person)
        camera_keys = _ensure_cameras(api)

        config = SimulationConfig(
            url=edge_url,
            camera_ids=[c[0] for c in CAMERAS],
            fps=args.fps,
            duration_s=args.duration,
            identities=[p.identity for p in PEOPLE],
            stranger_ratio=0.3,
            garbage_ratio=0.05,
            seed=args.seed,
            api_keys=camera_keys,
        )
        console.print(f"Simulating {len(CAMERAS)} cameras for {args.duration:g} s")
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(_simulate(config, edge_url, admin, names))
        _print_attendance(api)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument("--fps", type=float, default=1.0, help="frames/s per camera")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--fresh", action="store_true", help="wipe .demo/ first")
    try:
        _run(parser.parse_args())
    except KeyboardInterrupt:
        console.print("Stopped.")


if __name__ == "__main__":
    main()
