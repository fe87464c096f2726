"""Messages nobody put in the training data, with the intent a person would give them, shared by the NLU tests."""

from __future__ import annotations

UNSEEN_MESSAGES = [
    ("哈喽，有人没", "greet"),
    ("hey, anybody there?", "greet"),
    ("好的 那我先下线了 拜", "goodbye"),
    ("ok that's all from me, bye", "goodbye"),
    ("太谢谢你了", "thanks"),
    ("thanks a million", "thanks"),
    ("退货的话运费要我自己出吗", "ask_faq"),
    ("can i pay with apple pay", "ask_faq"),
    ("我的快递怎么还没到啊", "check_status"),
    ("where is my parcel, ordered last monday", "check_status"),
    ("我的order 67890 咋还没到", "check_status"),
    ("买的吹风机用一次就坏了，太坑了", "complain"),
    ("the shoes you sent are the wrong size and the box was ripped", "complain"),
    ("我要人工客服", "request_human"),
    ("let me talk to a real agent please", "request_human"),
    ("5分，挺满意", "give_rating"),
    ("I'd give it 4 stars", "give_rating"),
    ("订单号是 202311301234", "inform"),
    ("my order number is 99001122", "inform"),
    ("你是机器人还是真人", "chitchat"),
    ("帮我订一张明天去上海的火车票", "out_of_scope"),
    ("what's the weather in beijing", "out_of_scope"),
    # Added with the annotation guide (data/nlu/README.md): the customer's goal decides, one rule for mixed turns.
    ("我要投诉，订单12345一直没发货", "complain"),
    ("i want to complain, order 12345 still hasn't shipped", "complain"),
    ("耳机左边没声音，刚买没两天", "complain"),
    ("客服电话一直打不通，什么破服务", "complain"),
    ("帮我看下退款进度", "check_status"),
    ("has my refund gone through yet?", "check_status"),
    ("你们支持分期付款吗", "ask_faq"),
    ("do you ship to canada", "ask_faq"),
    ("好的谢谢 拜拜", "goodbye"),
    ("ok thanks, bye", "goodbye"),
    ("行，谢了", "thanks"),
    ("nope, that's not it", "deny"),
    ("推荐一部好看的电影", "out_of_scope"),
    ("can you book me a taxi", "out_of_scope"),
    ("你今天心情好吗", "chitchat"),
    ("东西是微波炉", "inform"),
    # Known misses of 2026-11-23, fixed by new, different examples in data/nlu/*_more.yml, never these strings.
    ("忘了", "deny"),
    ("跳过", "deny"),
    ("cancel", "deny"),
    ("算啦", "deny"),  # "forget it": affirm 0.43 before it joined the deny cue
    # The deny cue is a whole short reply: a complaint that opens with 不/没 is a complaint (zh_shopping's misses).
    ("不用了吧", "deny"),
    ("不好用，充一次电就没了", "complain"),
    ("没收到货，客服也不理人", "complain"),
    ("the kettle leaks", "complain"),
    ("the screen is cracked", "complain"),
    ("the agent was slow", "complain"),
]

# Gibberish in either script: no word of it was ever seen in training, so the bot asks to rephrase instead of guessing.
# Chinese onomatopoeia is made of particles every model has seen (吧, 啦, 啊), but never strung together.
UNSEEN_FALLBACK_MESSAGES = (
    "阿巴阿巴",
    "叽里呱啦",
    "啊啊啊啊",
    "哔哩哔哩吧啦",
    "噼里啪啦",
    "asdf",
    "asdfgh qwerty",
    "jjjjjjj",
    "Wo ist meine Bestellung?",
)
