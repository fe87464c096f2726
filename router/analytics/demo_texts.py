"""The words the demo CRM history is written in: bilingual complaints, questions, replies and resolutions."""

from __future__ import annotations

# Product names per language; complaints mention them so association rules and topics have something to find.
PRODUCTS: dict[str, dict[str, str]] = {
    "phone": {"zh": "手机", "en": "phone"},
    "headphones": {"zh": "耳机", "en": "headphones"},
    "laptop": {"zh": "笔记本电脑", "en": "laptop"},
    "kettle": {"zh": "热水壶", "en": "kettle"},
    "jacket": {"zh": "外套", "en": "jacket"},
    "power_bank": {"zh": "充电宝", "en": "power bank"},
}

# Each category's complaints share key terms (the planted topics TF-IDF and LDA must find).
COMPLAINTS: dict[str, dict[str, list[str]]] = {
    "delivery": {
        "zh": [
            "我买的{product}快递三天了还没到，物流信息一直不更新",
            "{product}的包裹显示已签收但我没收到快递，物流太慢了",
            "快递员没有送货上门，{product}的物流停在中转站好几天",
        ],
        "en": [
            "my {product} parcel has not arrived, the courier tracking has not updated for days",
            "tracking says the {product} parcel was delivered but the courier never came",
            "the courier delivery of my {product} is late and the tracking is stuck",
        ],
    },
    "refund_return": {
        "zh": [
            "{product}退货寄回去一周了退款还没到账",
            "申请退款被拒绝，{product}明明符合七天无理由退货",
            "退货单号已经填了，{product}的退款一直显示处理中",
        ],
        "en": [
            "I returned the {product} a week ago and the refund has still not arrived",
            "my refund request for the {product} return was rejected for no reason",
            "the {product} return was received but the refund is still pending",
        ],
    },
    "product_quality": {
        "zh": [
            "{product}用了两天就坏了，质量太差，屏幕失灵",
            "收到的{product}有划痕而且不能开机，质量问题",
            "{product}质量很差，做工粗糙，用一次就坏了",
        ],
        "en": [
            "the {product} broke after two days, the quality is poor and it is faulty",
            "the {product} arrived scratched and faulty, it will not turn on",
            "poor quality {product}, it stopped working and broke after one use",
        ],
    },
    "payment_billing": {
        "zh": [
            "买{product}被重复扣款两次，账单金额不对",
            "付款成功了但订单显示未支付，{product}的钱被扣了",
            "信用卡账单多扣了{product}的钱，要求退还多扣的款",
        ],
        "en": [
            "I was charged twice for the {product}, the bill shows a double charge on my card",
            "payment went through but the {product} order says unpaid and my card was charged",
            "my card statement has an extra charge for the {product}, please fix the billing",
        ],
    },
    "account": {
        "zh": [
            "账号登录不了，验证码一直收不到",
            "修改密码后账号被锁定，无法登录查看{product}订单",
            "手机号换了，账号验证码发不到新号码上",
        ],
        "en": [
            "I cannot log in to my account, the verification code never arrives",
            "my account is locked after a password reset, cannot log in to see the {product} order",
            "the login verification code goes to my old number, I am locked out of my account",
        ],
    },
    "service_attitude": {
        "zh": [
            "客服态度很差，问{product}的问题一直不理人",
            "客服说话很不耐烦，态度恶劣，{product}的问题没人管",
            "客服一直推脱，态度敷衍，不解决{product}的问题",
        ],
        "en": [
            "the agent was rude and ignored my questions about the {product}",
            "customer service was impolite and dismissive about my {product} problem",
            "the support agent was rude, kept me waiting and never solved the {product} issue",
        ],
    },
}

# The topic that appears only in the most recent weeks of the demo history ("emerging" must flag it).
EMERGING_COMPLAINTS: dict[str, list[str]] = {
    "zh": ["充电宝电池鼓包发烫，充电时冒烟", "充电宝充电时电池鼓包，外壳发烫变形"],
    "en": [
        "the power bank battery is swelling and gets hot while charging",
        "power bank battery swollen and overheating",
    ],
}

RESOLUTIONS: dict[str, dict[str, str]] = {
    "delivery": {"zh": "已联系快递加急派送，次日送达。", "en": "Chased the courier; parcel delivered the next day."},
    "refund_return": {"zh": "已人工审核并原路退款。", "en": "Refund approved manually to the original payment method."},
    "product_quality": {"zh": "已为客户换新并寄出。", "en": "Sent a replacement unit."},
    "payment_billing": {"zh": "已撤销重复扣款。", "en": "Reversed the duplicate charge."},
    "account": {"zh": "已核实身份并重置登录。", "en": "Verified identity and reset the login."},
    "service_attitude": {"zh": "已致歉并发放优惠券。", "en": "Apologised and issued a voucher."},
}

# Questions the bot answers itself (contained conversations): intent, zh text, en text.
QUESTIONS: list[tuple[str, str, str]] = [
    ("ask_delivery_time", "一般几天能到货？", "how long does delivery take?"),
    ("ask_return_policy", "退货政策是什么？", "what is your return policy?"),
    ("ask_payment_methods", "支持哪些付款方式？", "which payment methods do you accept?"),
    ("ask_order_status", "我的订单到哪了？", "where is my order?"),
    ("greet", "你好", "hello"),
]
FALLBACK_TEXTS = {"zh": "呃那个东西怎么弄啊", "en": "umm the thing with the stuff"}
BOT_REPLIES = {"zh": "好的，这就为您处理。", "en": "Sure, let me help you with that."}
TICKET_REPLIES = {
    "zh": "已为您创建工单，客服会尽快联系您。",
    "en": "I've opened a ticket; an agent will contact you soon.",
}
AGENT_REPLIES = {"zh": "您好，我是客服，正在为您处理。", "en": "Hi, I'm looking into this for you now."}
