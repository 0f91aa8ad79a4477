"""Writes taiwa/data/sample_posts.jsonl: two weeks of posts about Kettlebird Coffee, a fictional brand.

Every sentence below was written for taiwa. The script is deterministic (seeded), so the committed file can be
regenerated and reviewed: `python scripts/make_sample_corpus.py`.

What it holds, on purpose: complaints, questions, praise, sarcasm, neutral chatter, spam/bot posts, reposts,
the brand's own posts, English and Japanese, two hashtag campaigns (#MyKettleMorning, #WinterCupDesign /
#冬カップ), and repeat authors whose stories run across the fortnight so the drafts have something to remember.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "taiwa" / "data" / "sample_posts.jsonl"
START = dt.datetime(2026, 11, 10, 6, 0, tzinfo=dt.timezone.utc)
DAYS = 14
rng = random.Random(20261110)

PRODUCTS_EN = ["mug", "grinder", "cold brew bottle", "drip kettle", "tumbler", "pour-over kit", "beans"]
PRODUCTS_JA = ["マグ", "グラインダー", "ボトル", "ケトル", "タンブラー", "ドリッパー", "豆"]
STORES_EN = ["Shibuya", "Portland Pearl", "Osaka Umeda", "Hawthorne", "Kichijoji", "Haneda T3"]
STORES_JA = ["渋谷店", "梅田店", "吉祥寺店", "名古屋店", "福岡天神店"]
DRINKS_EN = ["oat latte", "flat white", "hojicha latte", "cold brew", "cortado", "maple cappuccino"]

COMPLAINT_EN = [
    "@kettlebird my {product} arrived cracked. Second time this month. What is going on with your packaging?",
    "Ordered a {product} from @kettlebird 9 days ago and it still hasn't shipped. No reply to my email either.",
    "@kettlebird the app charged me twice for one {drink}. Who do I talk to about a refund?",
    "Waited 25 minutes at {store} for a {drink} and got the wrong drink. Not great @kettlebird",
    "My kettlebird {product} is leaking from the lid after two weeks. Disappointed.",
    "@kettlebird your mobile order app crashes every time I hit pay. iPhone 16, latest version.",
    "The {product} I got from Kettlebird is missing the filter. Box was clearly opened before.",
    "Kettlebird {store} staff were honestly rude this morning. Not what I expect from you.",
    "Subscription beans came late again @kettlebird. Third month in a row. Thinking about cancelling.",
    "@kettlebird the handle on my {product} snapped off while washing it. Is that normal??",
    "Still waiting on my refund from @kettlebird. It's been three weeks and nobody answers DMs.",
    "The new {drink} at {store} tastes burnt. Used to be my favourite. What changed @kettlebird?",
]
SARCASM_EN = [
    "Oh great, my kettlebird {product} leaked all over my laptop bag. Love that for me. 🙃",
    "Wow @kettlebird, 40 minutes for a {drink}. Truly the fastest coffee in town.",
    "Fantastic, the kettlebird app logged me out AGAIN and ate my reward points. Best loyalty program ever.",
    "So glad I paid extra for express shipping so my {product} could arrive late in style. Thanks @kettlebird",
    "Nothing says premium like a {product} with a chip in the rim straight out of the box. Well done kettlebird",
]
QUESTION_EN = [
    "@kettlebird does the {product} work with induction stoves?",
    "Hey @kettlebird is the {store} location open on Thanksgiving?",
    "@kettlebird when is the holiday blend coming back?",
    "Is the kettlebird {product} dishwasher safe? Box doesn't say.",
    "@kettlebird can I change the grind size on my subscription without cancelling?",
    "Anyone know if kettlebird ships to Canada yet?",
    "@kettlebird how do I descale the {product}? Manual is vague.",
    "@kettlebird do you have oat milk at {store} or only at the big stores?",
    "What's the difference between the kettlebird {product} and the pro version? Worth the extra $40?",
]
PRAISE_EN = [
    "The {drink} at kettlebird {store} is unreal today ☕️",
    "Shoutout to the barista at kettlebird {store} who remembered my order. Small thing, big day.",
    "My kettlebird {product} is the best thing I bought this year. Zero regrets.",
    "@kettlebird your customer service sorted my order in 10 minutes. Impressed.",
    "Kettlebird beans + Sunday morning = happiness",
    "Finally tried the {drink} at kettlebird. Why did I wait so long?",
    "Gifted my dad a kettlebird {product} and he won't stop talking about it 😂",
    "The new kettlebird {product} design is gorgeous. Matte black forever.",
    "Kettlebird {store} has the coziest window seats in the city",
]
NEUTRAL_EN = [
    "Working from kettlebird {store} today. Wifi is decent.",
    "Kettlebird is opening a new store near the station apparently",
    "Trying the {drink} at kettlebird, will report back",
    "Comparing kettlebird and two other roasters for a blog post this week",
    "kettlebird {store} is busy at 8am, as usual",
    "Saw a kettlebird ad on the train this morning",
]
COMPLAINT_JA = [
    "@kettlebird_jp 届いた{product}が割れていました…梱包をもう少し何とかしてほしいです",
    "ケトルバードのアプリ、決済のところで毎回落ちる。不具合ですか？",
    "注文から1週間たっても{product}が届かない。問い合わせにも返信がない @kettlebird_jp",
    "{store}で30分待たされた上に注文と違うドリンクが出てきた。がっかり",
    "定期便の豆がまた遅れてる。これで3回目。解約しようかな",
    "ケトルバードの{product}、2週間でフタから漏れるようになった。残念です",
    "二重に請求されてる…返金どうすればいいの @kettlebird_jp",
]
SARCASM_JA = [
    "さすがケトルバード、3回連続の配送遅延。もはや芸術の域 🙃",
    "新品の{product}に最初から欠けがあるの、逆にレアで嬉しい（嬉しくない）",
]
QUESTION_JA = [
    "@kettlebird_jp {product}は食洗機で洗えますか？",
    "ケトルバードの{store}って年末年始も営業してますか？",
    "@kettlebird_jp 定期便の挽き目って途中で変えられますか？",
    "ケトルバードの冬限定ブレンドはいつ発売ですか？",
    "@kettlebird_jp {product}はIHでも使えますか？",
]
PRAISE_JA = [
    "ケトルバード{store}のほうじ茶ラテ、今日も最高だった☕️",
    "ケトルバードの{product}、買ってよかったものランキング今年1位です",
    "{store}の店員さんがいつも笑顔で癒される。ありがとうございます",
    "ケトルバードの豆で淹れる朝のコーヒーが一日の楽しみ",
    "@kettlebird_jp 問い合わせへの対応がとても丁寧で感動しました",
    "母にケトルバードの{product}をプレゼントしたらすごく喜んでくれた",
]
NEUTRAL_JA = [
    "今日はケトルバード{store}で作業中",
    "ケトルバードの新店舗、駅前にできるらしい",
    "ケトルバードの冬メニュー、明日から始まるみたい",
]
CAMPAIGN_MORNING_EN = [
    "Sunrise, my {product} and a quiet street. #MyKettleMorning @kettlebird",
    "Rainy day, hot {drink}, good book. #MyKettleMorning",
    "Day 3 of making pour-over before work and I'm hooked #MyKettleMorning #coffee",
    "My cat insists on supervising the brew every morning #MyKettleMorning",
    "Balcony coffee before the kids wake up #MyKettleMorning ☀️",
    "Camping stove + kettlebird {product} = perfect morning #MyKettleMorning #outdoors",
]
CAMPAIGN_MORNING_JA = [
    "朝日と{product}とコーヒー #MyKettleMorning",
    "出勤前の一杯が最高の贅沢 #MyKettleMorning #朝活",
    "週末の朝はゆっくりハンドドリップ #MyKettleMorning",
]
CAMPAIGN_WINTER_EN = [
    "My #WinterCupDesign entry: snowy mountains and a tiny kettle bird on the rim ❄️",
    "Drew a cozy cabin for the #WinterCupDesign contest, fingers crossed! @kettlebird",
    "Here's my #WinterCupDesign idea — a knitted sweater pattern for the cup sleeve",
    "Submitted my #WinterCupDesign! Aurora colours on a dark blue cup",
]
CAMPAIGN_WINTER_JA = [
    "#冬カップ #WinterCupDesign 雪うさぎのデザインで応募しました",
    "#冬カップ デザイン応募！椿と雪をイメージしました",
    "初めてデザインコンテストに参加 #WinterCupDesign #冬カップ",
]
CAMPAIGN_NEG = [
    "The #WinterCupDesign rules say you keep the rights but the fine print says otherwise?? @kettlebird",
    "Entered #MyKettleMorning but the link in your bio is broken @kettlebird",
]
SPAM = [
    "🚀 Earn $500/day with crypto signals! DM me now https://bit.ly/3xK9q #kettlebird #coffee",
    "Free followers instantly!!! click here https://tinyurl.com/fl0w #MyKettleMorning",
    "Passive income secrets, no experience needed, DM me https://t.co/sp4m #WinterCupDesign",
    "副業で月30万稼げる！今すぐLINE追加してね https://lin.ee/xxxx #ケトルバード",
    "Bitcoin airdrop ending soon, claim at https://claim-btc.example #kettlebird",
    "follow back for follow back!! cheap followers https://f4f.example #coffee #kettlebird",
]
BRAND_POSTS = [
    ("kettlebird", "en", "Holiday blend is back on Nov 20. Set your alarms ☕️ #kettlebird"),
    ("kettlebird", "en", "Show us your mornings with #MyKettleMorning — best photos win a drip kettle!"),
    ("kettlebird", "en", "Design our winter cup! Enter #WinterCupDesign by Nov 30."),
    ("kettlebird_jp", "ja", "#冬カップ デザインコンテスト開催中！11月30日まで #WinterCupDesign"),
    ("kettlebird_jp", "ja", "冬限定ブレンド、11月20日発売です。"),
]

# Repeat authors with a story across the fortnight: (day, hour, lang, category, text)
STORIES = {
    ("mika_t", "三上 美香", 820): [
        (1, 9, "ja", "complaint", "@kettlebird_jp 届いたマグが割れていました…写真送ります"),
        (5, 20, "ja", "praise", "@kettlebird_jp 交換のマグ届きました！対応早くて助かりました、ありがとうございます"),
        (11, 8, "ja", "complaint", "@kettlebird_jp 交換してもらったマグ、今度は取っ手にひびが…どうしたらいいですか"),
    ],
    ("dan_brews", "Dan Okafor", 4300): [
        (0, 15, "en", "complaint", "My @kettlebird grinder started making a horrible scraping noise after a month"),
        (4, 17, "en", "question", "@kettlebird is there a warranty on the grinder? Still making that noise"),
        (12, 10, "en", "complaint", "@kettlebird grinder stopped working completely today. Third time posting about "
                                    "this. Anyone there?"),
    ],
    ("sarah_k", "Sarah Kim", 12800): [
        (2, 7, "en", "campaign", "First coffee of the day with my new tumbler #MyKettleMorning"),
        (7, 7, "en", "praise", "The holiday blend at @kettlebird is everything I hoped for"),
        (12, 7, "en", "campaign", "Snow outside, kettle on, #MyKettleMorning part two ❄️"),
    ],
    ("alex_r", "Alex Rivera", 310): [
        (3, 12, "en", "complaint", "@kettlebird your app crashes every time I try to pay. iPhone, latest update."),
        (9, 13, "en", "complaint", "Still can't pay in the @kettlebird app. Crashes at checkout. Deleting it."),
    ],
    ("yuki_coffee", "ゆき☕", 2100): [
        (1, 22, "ja", "question", "@kettlebird_jp ケトルはIHでも使えますか？"),
        (6, 8, "ja", "campaign", "IHで使えました！毎朝の相棒です #MyKettleMorning"),
        (10, 21, "ja", "campaign", "#冬カップ 応募しました！雪の結晶デザインです #WinterCupDesign"),
    ],
    ("coffee_critic", "The Coffee Critic", 185000): [
        (4, 11, "en", "negative", "Visited three @kettlebird stores this week. Consistency is slipping. Review "
                                  "coming Friday."),
        (8, 11, "en", "neutral", "My kettlebird review is up. Mixed feelings, some real highs."),
    ],
    ("priya_n", "Priya N", 950): [
        (2, 16, "en", "question", "@kettlebird do you ship the cold brew bottle to Canada?"),
        (9, 16, "en", "complaint", "Ordered the cold brew bottle to Toronto, customs fee nobody warned me about. "
                                   "Not happy @kettlebird"),
    ],
    ("ken_osaka", "けん", 640): [
        (5, 10, "ja", "praise", "梅田店のスタッフさん、いつもありがとう"),
        (13, 9, "ja", "complaint", "梅田店、今朝はレジで20分待ち。いつもと違って対応が遅い @kettlebird_jp"),
    ],
}

HANDLES_EN = ["jess_m", "tomw", "latte_larry", "nora.reads", "b_chen", "marco_p", "hannah_b", "oli_runs",
              "dev_dana", "kat_writes", "sam_the_baker", "lucas.f", "zoe_l", "will_h", "ana_sousa", "theo_m",
              "mel_draws", "chris_o", "ivy_k", "rob_codes", "fatima_a", "george_p", "lena_w", "max_t",
              "ruby_s", "ethan_j", "clara_v", "noah_d", "emma_r", "leo_b"]
HANDLES_JA = ["haru_0612", "sakura_m", "taro_dev", "nana_cafe", "riku_s", "mei_photo", "sora_k", "aoi_7",
              "kaito_run", "hina_drip", "yuto_m", "mio_mio", "ren_coffee", "akari_t", "daichi_o"]
BOTS = [("crypto_signals_99", "Crypto Signals"), ("followme4free", "F4F"), ("fukugyo_master", "副業マスター")]


def fill(template: str, lang: str) -> str:
    return template.format(product=rng.choice(PRODUCTS_JA if lang == "ja" else PRODUCTS_EN),
                           store=rng.choice(STORES_JA if lang == "ja" else STORES_EN), drink=rng.choice(DRINKS_EN))


def followers() -> int:
    return int(rng.lognormvariate(5.5, 1.6))


def when(day: int | None = None, hour: int | None = None, *, after_day: int = 0) -> dt.datetime:
    d = rng.randrange(after_day, DAYS) if day is None else day
    h = rng.choice([7, 8, 8, 9, 12, 12, 13, 15, 18, 19, 20, 21, 22, 23]) if hour is None else hour
    return START + dt.timedelta(days=d, hours=h - 6, minutes=rng.randrange(60), seconds=rng.randrange(60))


def main() -> None:
    posts = []
    authors: dict[str, dict] = {}

    def author(handle: str, name: str | None = None, fol: int | None = None) -> dict:
        if handle not in authors:
            authors[handle] = {"id": str(10_000 + len(authors)), "handle": handle, "name": name or handle,
                               "followers": followers() if fol is None else fol, "verified": False}
        return authors[handle]

    def add(handle: str, text: str, lang: str, t: dt.datetime, *, name=None, fol=None, platform=None, **extra):
        a = author(handle, name, fol)
        plat = platform or ("instagram" if rng.random() < 0.15 else "x")
        pid = str(1_860_000_000_000_000_000 + len(posts) * 7919)
        rec = {"id": pid, "platform": plat, "author": a, "text": text, "created_at": t.isoformat(), "lang": lang,
               "url": f"https://example.invalid/{plat}/{pid}", "likes": int(rng.expovariate(1 / 6)),
               "reposts": int(rng.expovariate(1 / 1.5)), "replies": int(rng.expovariate(1 / 1.2)), **extra}
        posts.append(rec)
        return rec

    for (handle, name, fol), story in STORIES.items():
        for day, hour, lang, _, text in story:
            add(handle, text, lang, when(day, hour), name=name, fol=fol, platform="x")

    pools = [(COMPLAINT_EN, "en", 70), (SARCASM_EN, "en", 14), (QUESTION_EN, "en", 50), (PRAISE_EN, "en", 80),
             (NEUTRAL_EN, "en", 36), (COMPLAINT_JA, "ja", 30), (SARCASM_JA, "ja", 5), (QUESTION_JA, "ja", 24),
             (PRAISE_JA, "ja", 36), (NEUTRAL_JA, "ja", 14)]
    for pool, lang, n in pools:
        for _ in range(n):
            handle = rng.choice(HANDLES_JA if lang == "ja" else HANDLES_EN) if rng.random() < 0.45 else \
                f"{rng.choice(['user', 'cafe', 'morning', 'bean', 'drip', 'kohi' if lang == 'ja' else 'brew'])}" \
                f"_{rng.randrange(1000, 9999)}"
            add(handle, fill(rng.choice(pool), lang), lang, when())

    # Campaigns: #MyKettleMorning all fortnight; #WinterCupDesign from day 5 (Nov 15).
    for pool, lang, n, after in [(CAMPAIGN_MORNING_EN, "en", 60, 0), (CAMPAIGN_MORNING_JA, "ja", 24, 0),
                                 (CAMPAIGN_WINTER_EN, "en", 30, 5), (CAMPAIGN_WINTER_JA, "ja", 18, 5)]:
        for _ in range(n):
            handle = rng.choice(HANDLES_JA if lang == "ja" else HANDLES_EN) if rng.random() < 0.5 else \
                f"{'cafe' if lang == 'ja' else 'morning'}_{rng.randrange(1000, 9999)}"
            add(handle, fill(rng.choice(pool), lang), lang, when(after_day=after),
                platform="instagram" if rng.random() < 0.4 else "x")
    for text in CAMPAIGN_NEG:
        add(rng.choice(HANDLES_EN), text, "en", when(after_day=6))

    for _ in range(24):
        bot, name = rng.choice(BOTS)
        text = rng.choice(SPAM)
        add(bot, text, "ja" if "副業" in text else "en", when(), name=name, fol=rng.randrange(3, 60), platform="x")

    # Reposts of the brand's posts, and the brand's own posts (never answered).
    for handle, lang, text in BRAND_POSTS:
        original = add(handle, text, lang, when(), name="Kettlebird Coffee" if lang == "en" else "ケトルバード",
                       fol=48_000 if lang == "en" else 21_000, platform="x")
        for _ in range(rng.randrange(2, 5)):
            add(rng.choice(HANDLES_EN + HANDLES_JA), f"RT @{handle}: {text}", lang,
                dt.datetime.fromisoformat(original["created_at"]) + dt.timedelta(minutes=rng.randrange(5, 600)),
                platform="x", is_repost=True)

    # A reply thread: a customer answers our earlier (sent) question in the same conversation.
    thread = add("jess_m", "@kettlebird the lid on my tumbler won't seal anymore, coffee everywhere", "en",
                 when(3, 9), platform="x")
    add("jess_m", "@kettlebird yes it's the 16oz one, bought in October at Hawthorne", "en", when(3, 15),
        platform="x", conversation_id=thread["id"], in_reply_to_id=thread["id"])

    posts.sort(key=lambda p: p["created_at"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as fh:
        for p in posts:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(f"wrote {len(posts)} posts by {len(authors)} authors to {OUT}")


if __name__ == "__main__":
    main()
