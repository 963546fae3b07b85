"""Peak memory of a tier swap against the larger model's own peak (goal: at most 1.15x).

Each case runs in a fresh Python process and reports its peak resident set
size (ru_maxrss), so the figures do not mix. The starter model's normal
variant (Q4_1) is swapped for its derived low variant (Q3_K_S); the low
variant is made into a temporary R1CHAT_HOME first.

    python benchmarks/swap_memory.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

CASE = textwrap.dedent(
    """
    import json, os, pathlib, resource, time
    from r1chat.config import Settings
    from r1chat.engine import Sampling
    from r1chat.session import ChatSession

    sensors = pathlib.Path(os.environ["R1CHAT_SENSORS"])

    def battery(percent):
        sensors.write_text(json.dumps({"battery_percent": percent, "charging": False}))
        later = time.time() + 2
        os.utime(sensors, (later, later))

    case = os.environ["SWAP_CASE"]
    battery(15 if case == "low" else 60)
    session = ChatSession(Settings(), fixed_threads=2)
    sampling = Sampling(temperature=0, max_tokens=32)
    session.ask("Tell me about the moon.", sampling)
    if case == "swap":
        battery(15)
        session.ask("And the sun?", sampling)
        assert session.choice.variant.tier == "low", session.choice
    session.close()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """
)


def run_case(case: str, env: dict) -> float:
    result = subprocess.run(
        [sys.executable, "-c", CASE],
        env={**env, "SWAP_CASE": case},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "R1CHAT_HOME": home, "R1CHAT_SENSORS": os.path.join(home, "sensors.json")}
        subprocess.run(
            [sys.executable, "-m", "r1chat", "models", "quantize", "smollm2-135m", "--to", "Q3_K_S"],
            env=env, check=True, capture_output=True,
        )
        peaks: dict[str, list[float]] = {"normal": [], "low": [], "swap": []}
        for _ in range(args.runs):
            for case in peaks:
                peaks[case].append(run_case(case, env))

    medians = {case: statistics.median(values) for case, values in peaks.items()}
    larger = max(medians["normal"], medians["low"])
    ratio = medians["swap"] / larger
    if args.json:
        print(json.dumps({"peak_rss_mb": medians, "runs": peaks, "ratio": round(ratio, 3)}))
    else:
        for case, value in medians.items():
            print(f"peak RSS, {case:>6}: {value:7.1f} MB  (runs: {', '.join(f'{v:.1f}' for v in peaks[case])})")
        print(f"swap / larger model alone: {ratio:.3f}  (goal <= 1.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
