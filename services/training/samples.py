"""A believable chat dataset for trying fine-tuning without real data: an internal IT and
order-support assistant answering templated questions about varied products, requests and
offices. Deterministic for a seed, and free of anything the portal's PII scanner flags (no
e-mail addresses, phone numbers, card numbers or IP addresses; order and ticket numbers are
short prefixed codes)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PROMPTS = (
    "You are the internal IT help desk assistant. Answer briefly and give numbered steps.",
    "You are a support assistant for employees. Be concise, friendly and practical.",
    "You help staff with IT requests and hardware orders. Keep answers short and exact.",
)
PRODUCTS = (
    "Outlook",
    "Teams",
    "Slack",
    "Jira",
    "Confluence",
    "Salesforce",
    "Tableau",
    "Zoom",
    "GitHub",
    "Workday",
    "SAP Concur",
    "the VPN client",
)
DEVICES = (
    "laptop",
    "docking station",
    "monitor",
    "headset",
    "keyboard",
    "webcam",
    "tablet",
    "mouse",
)
OFFICES = ("Berlin", "Austin", "Dublin", "Singapore", "Toronto", "Lyon", "Madrid", "Osaka")
ERRORS = (
    "keeps asking for my password",
    "crashes on start",
    "says my licence has expired",
    "will not sync",
    "shows a blank window",
    "is very slow today",
)
CARRIERS = ("DHL", "UPS", "FedEx", "the internal courier")
TEAMS = ("Finance", "Marketing", "Engineering", "Sales", "Legal", "Support")


@dataclass(frozen=True)
class _Slots:
    product: str
    device: str
    office: str
    error: str
    carrier: str
    team: str
    order: str
    ticket: str
    days: int


def _question_and_answer(kind: str, s: _Slots, rng: random.Random) -> tuple[str, str]:
    if kind == "password":
        question = rng.choice(
            (
                f"I forgot my password for {s.product}. How do I reset it?",
                f"How can I reset my {s.product} password?",
                f"My {s.product} password expired, what should I do?",
            )
        )
        answer = (
            f"To reset your {s.product} password: 1. Open the self-service portal. "
            "2. Choose Reset password and confirm with your authenticator app. "
            f"3. Sign in to {s.product} again with the new password. "
            f"If it still fails, I can open ticket {s.ticket} for the help desk."
        )
    elif kind == "error":
        question = rng.choice(
            (
                f"{s.product} {s.error}. Can you help?",
                f"Since this morning {s.product} {s.error}.",
                f"Why does {s.product} keep doing this? It {s.error}.",
            )
        )
        answer = (
            f"Sorry about that. For {s.product}: 1. Quit it completely and start it again. "
            "2. Install pending updates from the software centre. "
            "3. Restart your computer. "
            f"If the problem continues, I have logged ticket {s.ticket} and an engineer "
            f"will contact you within {s.days} working days."
        )
    elif kind == "order_status":
        question = rng.choice(
            (
                f"Where is my order {s.order}?",
                f"Any update on hardware order {s.order}?",
                f"When will order {s.order} arrive?",
            )
        )
        answer = (
            f"Order {s.order} for a {s.device} has shipped with {s.carrier} to the "
            f"{s.office} office. It should arrive within {s.days} working days, and "
            "reception will let you know when it is ready to collect."
        )
    elif kind == "new_device":
        question = rng.choice(
            (
                f"I need a new {s.device}. How do I request one?",
                f"Can I order a replacement {s.device}?",
                f"My {s.device} is broken, how do I get another one?",
            )
        )
        answer = (
            f"You can request a {s.device} in the IT catalogue: 1. Open Hardware requests. "
            f"2. Pick the standard {s.device} and your office, {s.office}. "
            "3. Submit; your manager approves it. "
            f"I have started request {s.order} for you; delivery takes about {s.days} "
            "working days."
        )
    elif kind == "access":
        question = rng.choice(
            (
                f"How do I get access to {s.product} for the {s.team} team?",
                f"I joined {s.team}. Can I get a {s.product} account?",
                f"Please give me access to {s.product}.",
            )
        )
        answer = (
            f"Access to {s.product} is granted by the {s.team} application owner. "
            f"I have raised access request {s.ticket}; once approved, sign out and back in "
            f"and {s.product} will appear in your apps within one hour."
        )
    else:  # "vpn"
        question = rng.choice(
            (
                f"The VPN does not connect from the {s.office} office.",
                "I cannot connect to the VPN while travelling.",
                "VPN connection drops every few minutes.",
            )
        )
        answer = (
            "Please try these steps: 1. Check that you are online without the VPN. "
            "2. Update the VPN client to the latest version. "
            "3. Choose the nearest gateway and reconnect. "
            f"If it still drops, reply here and I will escalate ticket {s.ticket} to the "
            "network team."
        )
    return question, answer


KINDS = ("password", "error", "order_status", "new_device", "access", "vpn")


def sample_chat_records(count: int = 400, seed: int = 7) -> list[dict]:
    """``count`` chat-format records (system, user, assistant), the same for the same seed."""
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)  # noqa: S311 - made-up sample data, not security
    records: list[dict] = []
    for _ in range(count):
        slots = _Slots(
            product=rng.choice(PRODUCTS),
            device=rng.choice(DEVICES),
            office=rng.choice(OFFICES),
            error=rng.choice(ERRORS),
            carrier=rng.choice(CARRIERS),
            team=rng.choice(TEAMS),
            order=f"ORD-{rng.randint(10000, 99999)}",
            ticket=f"INC-{rng.randint(1000, 9999)}",
            days=rng.randint(2, 7),
        )
        question, answer = _question_and_answer(rng.choice(KINDS), slots, rng)
        records.append(
            {
                "messages": [
                    {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return records


def write_jsonl(records: Iterable[dict], path: Path | str) -> Path:
    """Write one JSON object per line (UTF-8) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target
