"""What a post wants: complaint, question, praise, spam or other — with the words that show it.

Rules, not a model: they are cheap, explainable in the inbox ("complaint: 'cracked'"), and catch what a
sentiment model misses (sarcasm such as "great, another cracked lid" reads positive but is a complaint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .sentiment import needs_multilingual

COMPLAINT_EN = re.compile(
    r"\b(broken|broke|cracked|crack|chipped|leak(?:s|ed|ing|y)?|late|delayed|never (?:arrived|came|showed)|"
    r"still waiting|refund|wrong (?:order|item|size|drink)|missing|damaged|doesn'?t work|does not work|"
    r"stopped working|not working|crash(?:es|ed|ing)?|charged twice|double charged|overcharged|rude|"
    r"worst|terrible|awful|horrible|noisy|rattl(?:es|ing)|scraping|disappointed|disappointing|cancel(?:led|ed)?|no (?:reply|response|answer)|"
    r"ignored|where is my|unacceptable|cold again|burnt|stale|scam)\b", re.I)
COMPLAINT_JA = re.compile(r"(壊れ|割れ|ひび|欠け|漏れ|届かない|届いてない|届いていない|遅い|遅れ|遅延|待たされ|返金|最悪|不良|"
                          r"間違|使えない|落ちる|二重|がっかり|ひどい|酷い|返信がない|対応して|まだ来ない|不具合)")
QUESTION_EN = re.compile(r"(\?|^\s*(?:how|when|where|what|why|which|who|does|do|is|are|can|could|will|would|"
                         r"any(?:one)?)\b)", re.I)
QUESTION_JA = re.compile(r"(？|\?|ですか|ますか|でしょうか|教えて|ありますか|いつ|どこ|どう)")
SPAM_EN = re.compile(r"\b(giveaway winner|crypto|bitcoin|btc|forex|airdrop|earn \$?\d+|free followers|"
                     r"follow ?back|dm me|promo code|click (?:here|the link)|onlyfans|nft drop|passive income|"
                     r"investment opportunity|cheap followers)\b", re.I)
SPAM_JA = re.compile(r"(副業|稼げ|稼ぐ|今すぐ|LINE追加|無料プレゼント|フォロバ|投資|仮想通貨|儲か)")
LINK = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Intent:
    name: str              # complaint | question | praise | spam | other
    evidence: tuple[str, ...] = ()


def language(text: str, hint: str = "") -> str:
    """'ja' for Japanese (or other non-Latin) text, 'en' otherwise; a platform's own lang tag wins."""
    if hint in ("ja", "en"):
        return hint
    return "ja" if needs_multilingual(text) else "en"


def detect(text: str, sentiment_label: str, *, extra_complaint_words: tuple[str, ...] = ()) -> Intent:
    """The post's intent and the words that show it. Spam first: it is never answered."""
    t = text or ""
    spam = SPAM_EN.findall(t) + SPAM_JA.findall(t)
    links = LINK.findall(t)
    if spam and (links or len(spam) > 1):
        return Intent("spam", tuple(dict.fromkeys(s.lower() for s in spam)))
    if len(links) >= 3:
        return Intent("spam", ("many links",))
    complaint = [m.lower() for m in COMPLAINT_EN.findall(t)] + COMPLAINT_JA.findall(t)
    complaint += [w for w in extra_complaint_words if w and w.lower() in t.lower()]
    if complaint:
        return Intent("complaint", tuple(dict.fromkeys(complaint)))
    q = QUESTION_EN.findall(t) + QUESTION_JA.findall(t)
    if q:
        return Intent("question", tuple(dict.fromkeys(x.strip().lower() for x in q if x.strip())))
    if sentiment_label == "positive":
        return Intent("praise")
    return Intent("other")
