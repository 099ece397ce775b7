"""Dataset inspection at scale: validating and PII-scanning a chat-format JSONL file, next to
the floor of only reading it and parsing every line with orjson, measured in the same run.

    python -m benchmarks.dataset_inspection [--mb 100] [--seed 7] [--keep PATH]

The generated file is realistic prose (with numbers, dates, times, prices, versions, private
IP addresses, a little non-ASCII) in conversations of one to four turns, with about 0.5 % of
the records carrying one piece of PII (e-mail, phone, card, SSN, IBAN, AWS key, IP address).
"""

from __future__ import annotations

import argparse
import random
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
from stdnum import luhn

from benchmarks import figures
from benchmarks.figures import Figure
from services.registry.formats import DatasetFormat
from services.registry.inspection import DatasetReport, inspect_jsonl

PII_RATE = 0.005
REQUIRED_MB_PER_S = 20.0

_VOCABULARY = (
    "the of and to in is you that it was for on are as with they at be this have from or one "
    "had by but not what all were we when your can said there use an each which she do how "
    "their if will up other about out many then them these so some her would make like him "
    "into time has look two more write go see number no way could people my than first water "
    "been call who its now find long down day did get come made may part model dataset train "
    "customer order invoice refund account shipment delivery policy support ticket request "
    "please thanks sorry issue error server deployment latency budget report quarter revenue "
    "café naïve résumé déjà façade Zürich"
)
WORDS = _VOCABULARY.split()
FILLERS = (
    lambda r: f"{r.randint(1, 2000)}",
    lambda r: f"on 2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    lambda r: f"at {r.randint(0, 23)}:{r.randint(0, 59):02d}",
    lambda r: f"for ${r.randint(1, 999)}.{r.randint(0, 99):02d}",
    lambda r: f"in version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
    lambda r: f"about {r.randint(1, 99)}%",
    lambda r: f"order #{r.randint(10**9, 10**12)}",
    lambda r: f"from 10.0.{r.randint(0, 255)}.{r.randint(1, 254)}",
    lambda r: f"with {r.randint(1, 9)} {r.choice(['GB', 'ms', 'tokens', 'users'])}",
    lambda r: "👍",
)


def _card(r: random.Random) -> str:
    number = "4" + "".join(r.choices(string.digits, k=14))
    number += luhn.calc_check_digit(number)
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def _iban_de(r: random.Random) -> str:
    bban = f"{r.randint(10**7, 10**8 - 1)}{r.randint(10**9, 10**10 - 1)}"
    check = 98 - int(bban + "131400") % 97  # D=13, E=14
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


PII_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "email": lambda r: f"{r.choice(['jane', 'li.wei', 'omar'])}{r.randint(1, 999)}@example.com",
    "phone": lambda r: (
        f"({r.choice(['212', '415', '312'])}) {r.randint(201, 989)}-{r.randint(1000, 9999)}"
    ),
    "credit_card": _card,
    "us_ssn": lambda r: f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
    "iban": _iban_de,
    "aws_access_key": lambda r: (
        "AKIA" + "".join(r.choices(string.ascii_uppercase + "234567", k=16))
    ),
    "ip_address": lambda r: f"81.{r.randint(2, 200)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
}


def _sentence(r: random.Random) -> str:
    words = r.choices(WORDS, k=r.randint(6, 22))
    if r.random() < 0.35:
        words.insert(r.randrange(len(words)), r.choice(FILLERS)(r))
    return " ".join(words).capitalize() + "."


def _record(r: random.Random, sentences: list[str], planted: Counter[str]) -> dict[str, object]:
    messages: list[dict[str, str]] = []
    if r.random() < 0.5:
        messages.append({"role": "system", "content": " ".join(r.choices(sentences, k=2))})
    for _ in range(r.randint(1, 4)):
        messages.append(
            {"role": "user", "content": " ".join(r.choices(sentences, k=r.randint(1, 5)))}
        )
        messages.append(
            {"role": "assistant", "content": " ".join(r.choices(sentences, k=r.randint(2, 12)))}
        )
    if r.random() < PII_RATE:
        kind = r.choice(list(PII_MAKERS))
        planted[kind] += 1
        turn = r.choice(messages)
        turn["content"] += f" You can reach it at {PII_MAKERS[kind](r)} if needed."
    return {"messages": messages}


def generate(path: Path, megabytes: float, seed: int) -> Counter[str]:
    """Write about ``megabytes`` MB of chat JSONL to ``path``; return how many values of
    each PII kind it planted."""
    r = random.Random(seed)
    sentences = [_sentence(r) for _ in range(50_000)]
    target = int(megabytes * 1_000_000)
    written = 0
    planted: Counter[str] = Counter()
    with path.open("wb") as out:
        while written < target:
            block = b"".join(
                orjson.dumps(_record(r, sentences, planted)) + b"\n" for _ in range(1000)
            )
            out.write(block)
            written += len(block)
    return planted


def floor(path: Path) -> float:
    """Seconds to read the file line by line and orjson-parse every line."""
    started = time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            orjson.loads(line)
    return time.perf_counter() - started


def inspect(path: Path) -> tuple[float, DatasetReport]:
    started = time.perf_counter()
    with path.open("rb") as f:
        report = inspect_jsonl(f, DatasetFormat.CHAT)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of the generated file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "chat.jsonl"
        started = time.perf_counter()
        planted = generate(path, args.mb, args.seed)
        size = path.stat().st_size
        mb = size / 1_000_000
        print(f"generated {mb:,.1f} MB in {time.perf_counter() - started:.1f} s: {path}")
        floor(path)  # warm the page cache so both measurements read from memory
        floor_s = floor(path)
        inspect_s, report = inspect(path)
        assert report.valid_record_count == report.record_count, report.issues[:3]
        records = report.record_count
        print(f"records           {records:,}  ({report.token_estimate:,} tokens est.)")
        print(f"read + orjson     {floor_s:6.2f} s  {mb / floor_s:7.1f} MB/s  (floor)")
        print(
            f"inspect_jsonl     {inspect_s:6.2f} s  {mb / inspect_s:7.1f} MB/s  "
            f"{records / inspect_s:,.0f} records/s"
        )
        print(f"inspect / floor   {inspect_s / floor_s:.1f}× the floor's time")
        verdict = "meets" if mb / inspect_s >= REQUIRED_MB_PER_S else "MISSES"
        print(f"requirement       >= {REQUIRED_MB_PER_S:.0f} MB/s: {verdict}")
        print("PII found / planted by the generator")
        for kind, count in planted.items():
            finding = report.pii.get(kind)
            found, examples = (finding.count, ", ".join(finding.examples)) if finding else (0, "")
            print(f"  {kind:<16} {found:>5,} / {count:<5,} e.g. {examples}")
        for kind in report.pii.keys() - planted.keys():
            print(f"  {kind:<16} {report.pii[kind].count:>5,} / 0      (false positives)")
    speed, planted_total = mb / inspect_s, sum(planted.values())
    found_total = sum(min(report.pii[k].count, n) for k, n in planted.items() if k in report.pii)
    extra = sum(report.pii[k].count for k in report.pii.keys() - planted.keys())
    figures.report(
        "dataset_inspection",
        [
            Figure(
                f"inspect_jsonl, {mb:,.0f} MB",
                speed,
                "MB/s",
                f">= {REQUIRED_MB_PER_S:.0f} MB/s",
                speed >= REQUIRED_MB_PER_S,
                f"{inspect_s / floor_s:.1f}x the floor's time",
            ),
            Figure("floor: read + orjson.loads", mb / floor_s, "MB/s"),
            Figure(
                "planted PII values found",
                found_total,
                f"of {planted_total}",
                "all",
                found_total == planted_total,
                f"{extra} of kinds not planted",
            ),
        ],
    )


if __name__ == "__main__":
    main()
