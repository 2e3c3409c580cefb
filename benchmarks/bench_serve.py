"""makemore serve under load: N concurrent clients on loopback, then one request's latency for each shipped model.

    python -m benchmarks.bench_serve                       # quick runs trained here, 32 clients x 200 requests
    python -m benchmarks.bench_serve --runs out --clients 16 --requests 50 --time-limit 30 --rounds 3

Each load run is a real `python -m makemore serve` process; the clients are httpx.AsyncClient tasks in this
process, each sending its requests one after another, half sample ({"n": 20}, a fresh seed each) and half
score (20 names). The load figures need a working model, not a well-trained one: without --runs, every
shipped config is trained for a few steps on 2,000 names (words from a barely trained model run longer,
so sampling is slower than from a trained one). Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

import makemore
from makemore.data import bundled_path

REPO = Path(__file__).resolve().parent.parent
TYPES = [p.stem for p in sorted((REPO / "configs").glob("*.yaml")) if not p.stem.startswith("speedrun")]
SMALL, LARGEST = "mlp", "convnet"  # the default, and the most parameters of the shipped configs
WORDS = bundled_path().read_text(encoding="utf-8").split()[:2000]


def train_quick(root: Path, types: list[str], steps: int) -> Path:
    """Each type's shipped config trained for a few steps on 2,000 names, in root/<type>."""
    root.mkdir(parents=True, exist_ok=True)
    names = root / "names.txt"
    names.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    for t in types:
        if not (root / t / "model.pt").exists():
            with contextlib.redirect_stdout(io.StringIO()):  # the training report: not this benchmark's output
                makemore.train(REPO / "configs" / f"{t}.yaml", input=str(names), max_steps=steps,
                               eval_interval=steps, work_dir=str(root / t), progress=False)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m makemore serve RUN_DIR...` on a free loopback port, stopped (SIGTERM) on exit."""

    def __init__(self, run_dirs: list[Path]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "makemore", "serve", *map(str, run_dirs), "--port",
                                      str(self.port)], cwd=REPO, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.proc.kill()
        raise SystemExit(f"the server did not start for {run_dirs}")

    def rss_mib(self) -> float:
        """The server process's resident memory, MiB (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def body(i: int, rng: random.Random) -> tuple[str, dict]:
    """The i-th request of a client: sample and score in turn."""
    if i % 2 == 0:
        return "/api/sample", {"n": 20, "seed": rng.randrange(2**31)}
    return "/api/score", {"words": rng.sample(WORDS, 20)}


async def client(url: str, requests: int, deadline: float, seed: int, latencies: list, errors: list) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for i in range(requests):
            if time.monotonic() > deadline:
                return
            path, payload = body(i, rng)
            start = time.perf_counter()
            try:
                response = await http.post(path, json=payload)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:100]}")
            except httpx.HTTPError as e:
                errors.append(f"{type(e).__name__}")
            latencies.append(time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_test(run_dir: Path, clients: int, requests: int, time_limit: float, rounds: int) -> list[dict]:
    """Rounds of concurrent clients against one server: throughput, latency, errors, memory before and after each.

    The first round grows the server to its working size (a thread pool, each thread's allocations); the
    later rounds, the same load again, show whether it keeps growing.
    """
    rows = []
    with Server([run_dir]) as server:
        info = httpx.get(f"{server.url}/api/runs").json()["runs"][0]
        for round_ in range(1, rounds + 1):
            rows.append({"run": run_dir.name, "type": info["type"], "params": info["params"], "round": round_,
                         **one_round(server, clients, requests, time_limit, seed=1000 * round_)})
    return rows


def one_round(server: Server, clients: int, requests: int, time_limit: float, seed: int) -> dict:
    rss_before = server.rss_mib()
    latencies, errors = [], []

    async def everyone():
        deadline = time.monotonic() + time_limit
        await asyncio.gather(*(client(server.url, requests, deadline, seed + c, latencies, errors)
                               for c in range(clients)))

    samples, done = [], threading.Event()  # the server's memory every second while the clients run
    watcher = threading.Thread(target=watch, args=(server, samples, done))
    start = time.perf_counter()
    watcher.start()
    asyncio.run(everyone())
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    return {"clients": clients, "requests": len(latencies), "asked": clients * requests, "seconds": round(seconds, 1),
            "requests_per_s": round(len(latencies) / seconds, 1), "p50_ms": round(1000 * percentile(latencies, 0.5), 1),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 1), "errors": len(errors), "error_sample": errors[:3],
            "rss_before_mib": round(rss_before, 1), "rss_peak_mib": round(max(samples), 1),
            "rss_after_mib": round(server.rss_mib(), 1)}


def watch(server: Server, samples: list, done: threading.Event) -> None:
    samples.append(server.rss_mib())
    while not done.wait(1.0):
        samples.append(server.rss_mib())


def latencies_by_type(run_dirs: list[Path], repeats: int = 7) -> list[dict]:
    """One /api/sample request of 20 words to each run, one at a time: the median of repeats, after a warm-up."""
    rows = []
    with Server(run_dirs) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        for info in http.get("/api/runs").json()["runs"]:
            http.post("/api/sample", json={"run": info["name"], "n": 20})
            times, lengths = [], []
            for seed in range(repeats):
                start = time.perf_counter()
                words = http.post("/api/sample", json={"run": info["name"], "n": 20, "seed": seed}).json()["words"]
                times.append(time.perf_counter() - start)
                lengths += [len(w["word"]) for w in words]
            rows.append({"run": info["name"], "type": info["type"], "params": info["params"],
                         "median_ms": round(1000 * statistics.median(times), 1),
                         "mean_word_length": round(statistics.mean(lengths), 1)})
    return rows


BAD = [  # what each bad input gets: (what, path, body as sent)
    ("unknown run", "/api/sample", {"run": "nope"}),
    ("n too big", "/api/sample", {"n": 1001}),
    ("unknown field", "/api/sample", {"colour": "red"}),
    ("wrong type", "/api/sample", {"n": "5"}),
    ("prefix too long", "/api/sample", {"prefix": "a" * 65}),
    ("character not in the vocabulary", "/api/sample", {"prefix": "Q"}),
    ("impossible constraint", "/api/sample", {"match": "zzzzzz", "max_length": 3}),
    ("label on a run without labels", "/api/sample", {"label": "girls"}),
    ("word too long", "/api/score", {"words": ["a" * 65]}),
    ("too many words", "/api/score", {"words": ["a"] * 1001}),
    ("word that cannot be scored", "/api/score", {"words": ["EMMA"]}),
    ("body over 64 KiB", "/api/score", {"words": ["emma"] * 20_000}),
    ("not JSON", "/api/sample", "{nope"),
    ("unknown page", "/nowhere", None),
]


def bad_inputs(url: str) -> list[dict]:
    """Each bad request sent to a real server: its status and message."""
    rows = []
    for what, path, payload in BAD:
        if payload is None:
            response, shown = httpx.get(url + path), f"GET {path}"
        else:
            content = payload if isinstance(payload, str) else json.dumps(payload)
            response = httpx.post(url + path, content=content, headers={"content-type": "application/json"})
            shown = f"POST {path} " + (content if len(content) <= 60 else f"({len(content):,} bytes)")
        rows.append({"what": what, "request": shown, "status": response.status_code,
                     "error": response.json()["error"]})
    return rows


def markdown(load: list[dict], single: list[dict]) -> str:
    lines = ["| model | params | round | clients | requests (asked) | s | requests/s | p50 ms | p99 ms | errors | "
             "server RSS MiB: before → after (peak) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['type']} | {r['params']:,} | {r['round']} | {r['clients']} | {r['requests']:,} ({r['asked']:,}) "
              f"| {r['seconds']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} | "
              f"{r['rss_before_mib']} → {r['rss_after_mib']} ({r['rss_peak_mib']}) |" for r in load]
    lines += ["", "| model | params | one request of 20 words, median ms | mean word length |", "|---|---:|---:|---:|"]
    lines += [f"| {r['type']} | {r['params']:,} | {r['median_ms']} | {r['mean_word_length']} |" for r in single]
    return "\n".join(lines)


def bad_markdown(rows: list[dict]) -> str:
    lines = ["| bad input | request | status | error |", "|---|---|---:|---|"]
    lines += [f"| {r['what']} | `{r['request']}` | {r['status']} | `{r['error']}` |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, help="a folder of runs named by type (mlp/, convnet/, ...); the shipped "
                   "types it lacks are trained into it for --steps steps (default: a temporary folder)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=200, help="requests per client")
    p.add_argument("--time-limit", type=float, default=60, help="seconds per round, after which the clients stop")
    p.add_argument("--rounds", type=int, default=2, help="rounds of the same load on one server (memory: flat?)")
    p.add_argument("--steps", type=int, default=30, help="training steps of the quick runs")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = train_quick(args.runs or Path(tmp), TYPES, args.steps)
        load = [row for t in (SMALL, LARGEST)
                for row in load_test(root / t, args.clients, args.requests, args.time_limit, args.rounds)]
        single = latencies_by_type([root / t for t in TYPES if (root / t).is_dir()])
        with Server([root / SMALL]) as server:
            bad = bad_inputs(server.url)
    print(markdown(load, single), "", bad_markdown(bad), sep="\n")
    if args.json:
        figures = {"load": load, "single": single, "bad_inputs": bad}
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
