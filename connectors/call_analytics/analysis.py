"""One Contact Lens analysis document → one call row (a plain dict in the calls schema).

Parsing a document is per file (a text protocol); batching into Arrow happens in
:mod:`connectors.call_analytics.reader`. Voice and chat differ in where things are:

- voice: per-turn ``Sentiment`` and millisecond offsets, ``SentimentByPeriod.QUARTER``,
  talk time, non-talk time, interruptions, issues inline in the turns;
- chat: ``AbsoluteTime`` per item, sentiment per item group with a progressive score,
  issues in ``ContactSummary`` as character offsets into a turn.

>>> doc = {"Channel": "VOICE", "LanguageCode": "en-US",
...        "ConversationCharacteristics": {"Sentiment": {"OverallSentiment": {"CUSTOMER": -2.5}}},
...        "Transcript": [{"ParticipantId": "CUSTOMER", "Content": "No!", "Sentiment": "NEGATIVE",
...                        "BeginOffsetMillis": 0, "EndOffsetMillis": 900, "LoudnessScore": [85.0],
...                        "IssuesDetected": [{"Text": "No"}]}]}
>>> row = to_call(doc, "abc_analysis_2026.json")
>>> row["contact_id"], row["sentiment"]["customer"]["score"], row["issues"]
('abc', -2.5, ['No'])
>>> row["customer_signals"]["negative_turns"], row["customer_signals"]["loud_negative_turns"]
(1, 1)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

LOUD = 80.0  # a LoudnessScore at or above this counts as raised voice


def contact_id(doc: dict, source_file: str) -> str:
    """CustomerMetadata.ContactId, else the file name before ``_analysis_``, else the file stem."""
    cid = (doc.get("CustomerMetadata") or {}).get("ContactId")
    if cid:
        return str(cid)
    name = PurePosixPath(source_file).name
    return name.split("_analysis_")[0] if "_analysis_" in name else PurePosixPath(name).stem


def _g(node: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(node, dict):
            return None
        node = node.get(p)
    return node


def _ms(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


def _is_message(item: dict, voice: bool) -> bool:
    return voice or item.get("Type") == "MESSAGE"


def _chat_sentiments(cc: dict) -> tuple[dict[str, str], dict[str, list[float]]]:
    by_item: dict[str, str] = {}
    scores: dict[str, list[float]] = {}
    for g in _g(cc, "Sentiment", "DetailsByTranscriptItemGroup") or []:
        for it in g.get("TranscriptItems") or []:
            by_item[it.get("Id")] = g.get("Sentiment")
        scores.setdefault(g.get("ParticipantRole"), []).append(g.get("ProgressiveScore"))
    return by_item, scores


def _summary_texts(cc: dict, kind: str, content: dict[str, str]) -> list[tuple[str, str]]:
    """(turn id, text) of chat summary items of ``kind`` (IssuesDetected, OutcomesDetected, ...)."""
    out = []
    for group in _g(cc, "ContactSummary", "SummaryItemsDetected") or []:
        for found in group.get(kind) or []:
            for it in found.get("TranscriptItems") or []:
                text = content.get(it.get("Id"))
                off = it.get("CharacterOffsets") or {}
                if text is not None:  # offsets past the end are clipped, as the samples have them
                    text = text[off.get("BeginOffsetChar", 0): off.get("EndOffsetChar", len(text))]
                out.append((it.get("Id"), text))  # None: the item it points at is not in the transcript
    return out


def _turns(doc: dict, voice: bool, cc: dict) -> list[dict]:
    items = [i for i in doc.get("Transcript") or [] if _is_message(i, voice)]
    roles = {p.get("ParticipantId"): p.get("ParticipantRole") for p in doc.get("Participants") or []}
    sentiment_of, _ = _chat_sentiments(cc)
    start = min((_ms(i["AbsoluteTime"]) for i in doc.get("Transcript") or [] if i.get("AbsoluteTime")), default=0)
    chat_issues: dict[str, list[str]] = {}
    if not voice:
        content = {i.get("Id"): i.get("Content") for i in items}
        for tid, text in _summary_texts(cc, "IssuesDetected", content):
            chat_issues.setdefault(tid, []).append(text)
    turns = []
    for n, it in enumerate(items):
        loud = it.get("LoudnessScore") or []
        turns.append({
            "turn_index": n,
            "turn_id": it.get("Id"),
            "participant_id": it.get("ParticipantId"),
            "role": it.get("ParticipantRole") or roles.get(it.get("ParticipantId")) or it.get("ParticipantId"),
            "begin_offset_ms": it.get("BeginOffsetMillis") if voice else round(_ms(it["AbsoluteTime"]) - start) if it.get("AbsoluteTime") else None,
            "end_offset_ms": it.get("EndOffsetMillis") if voice else None,
            "content": it.get("Content"),
            "sentiment": it.get("Sentiment") if voice else sentiment_of.get(it.get("Id")),
            "loudness_max": max(loud) if loud else None,
            "issues": [d.get("Text") for d in it.get("IssuesDetected") or []] if voice else chat_issues.get(it.get("Id"), []),
        })
    return turns


def _party_sentiment(cc: dict, role: str, voice: bool) -> dict:
    s = cc.get("Sentiment") or {}
    if voice:
        quarters = [{"begin_offset_ms": q.get("BeginOffsetMillis"), "end_offset_ms": q.get("EndOffsetMillis"),
                     "score": q.get("Score")} for q in _g(s, "SentimentByPeriod", "QUARTER", role) or []]
        return {"score": _g(s, "OverallSentiment", role),
                "begin_score": quarters[0]["score"] if quarters else None,
                "end_score": quarters[-1]["score"] if quarters else None,
                "quarters": quarters or None}
    shift = _g(s, "SentimentShift", "DetailsByParticipantRole", role) or {}
    return {"score": _g(s, "OverallSentiment", "DetailsByParticipantRole", role),
            "begin_score": shift.get("BeginScore"), "end_score": shift.get("EndScore"), "quarters": None}


def _signals(turns: list[dict], cc: dict, voice: bool, sentiment: dict) -> dict:
    mine = [t for t in turns if t["role"] == "CUSTOMER"]
    neg = [t for t in mine if t["sentiment"] == "NEGATIVE"]
    loud_neg = sum(1 for t in neg if (t["loudness_max"] or 0) >= LOUD) if voice else None
    if voice:
        scores = [q["score"] for q in sentiment["customer"]["quarters"] or [] if q["score"] is not None]
    else:
        scores = [x for x in _chat_sentiments(cc)[1].get("CUSTOMER", []) if x is not None]
    low = min(scores) if scores else None
    share = len(neg) / len(mine) if mine else None
    anger = None
    if share is not None or low is not None:
        anger = round(0.5 * max(0.0, -(low or 0.0)) / 5 + 0.3 * (share or 0.0) + 0.2 * min(1.0, (loud_neg or 0) / 2), 4)
    return {"turns": len(mine), "negative_turns": len(neg), "negative_share": share, "min_score": low,
            "loud_negative_turns": loud_neg, "anger_score": anger}


def _voice_metrics(cc: dict) -> dict:
    talk = cc.get("TalkTime") or {}
    by = talk.get("DetailsByParticipant") or {}
    speed = _g(cc, "TalkSpeed", "DetailsByParticipant") or {}
    return {
        "talk_time": {"total_ms": talk.get("TotalTimeMillis"), "agent_ms": _g(by, "AGENT", "TotalTimeMillis"),
                      "customer_ms": _g(by, "CUSTOMER", "TotalTimeMillis")},
        "non_talk_time": {"total_ms": _g(cc, "NonTalkTime", "TotalTimeMillis"),
                          "instances": len(_g(cc, "NonTalkTime", "Instances") or [])},
        "interruptions": {"count": _g(cc, "Interruptions", "TotalCount"), "total_ms": _g(cc, "Interruptions", "TotalTimeMillis")},
        "talk_speed": {"agent_wpm": _g(speed, "AGENT", "AverageWordsPerMinute"),
                       "customer_wpm": _g(speed, "CUSTOMER", "AverageWordsPerMinute")},
    }


def _duration(doc: dict, cc: dict, voice: bool) -> int | None:
    if voice:
        return cc.get("TotalConversationDurationMillis")
    times = [_ms(i["AbsoluteTime"]) for i in doc.get("Transcript") or [] if i.get("AbsoluteTime")]
    return round(max(times) - min(times)) if times else None


def _texts(turns: list[dict], doc: dict, cc: dict, kind: str, voice: bool) -> list[str]:
    if voice:
        return [d.get("Text") for i in doc.get("Transcript") or [] for d in i.get(kind) or []]
    content = {t["turn_id"]: t["content"] for t in turns}
    return [text for _, text in _summary_texts(cc, kind, content)]


def to_call(doc: dict, source_file: str) -> dict[str, Any]:
    """The call row of one analysis document (without last_modified / version / drift columns)."""
    voice = doc.get("Channel") == "VOICE"
    cc = doc.get("ConversationCharacteristics") or {}
    turns = _turns(doc, voice, cc)
    roles = {t["participant_id"]: t["role"] for t in turns}
    sentiment = {"customer": _party_sentiment(cc, "CUSTOMER", voice), "agent": _party_sentiment(cc, "AGENT", voice)}
    row = {
        "contact_id": contact_id(doc, source_file),
        "source_file": source_file,
        "channel": doc.get("Channel"),
        "analysis_version": doc.get("Version"),
        "job_status": doc.get("JobStatus"),
        "language": doc.get("LanguageCode"),
        "account_id": doc.get("AccountId"),
        "instance_id": _g(doc, "CustomerMetadata", "InstanceId"),
        "redacted": _g(doc, "ContentMetadata", "Output") == "Redacted",
        "participants": [{"participant_id": p.get("ParticipantId"),
                          "role": p.get("ParticipantRole") or roles.get(p.get("ParticipantId")),
                          "display_name": p.get("DisplayName")} for p in doc.get("Participants") or []],
        "duration_ms": _duration(doc, cc, voice),
        "sentiment": sentiment,
        "categories": list(_g(doc, "Categories", "MatchedCategories") or []),
        "customer_signals": _signals(turns, cc, voice, sentiment),
        "issues": _texts(turns, doc, cc, "IssuesDetected", voice),
        "action_items": _texts(turns, doc, cc, "ActionItemsDetected", voice),
        "outcomes": _texts(turns, doc, cc, "OutcomesDetected", voice),
        "turn_count": len(turns),
        "transcript": turns,
    }
    row.update(_voice_metrics(cc) if voice else
               {"talk_time": None, "non_talk_time": None, "interruptions": None, "talk_speed": None})
    return row
