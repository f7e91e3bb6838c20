"""The pay page the checkout's QR opens (/pay/{payment}): Jinja2, autoescaped, inline.

It stands in for the payment provider's cashier page; the template lives here rather
than in a file because only cloud/web/templates is packaged as data.
"""

from __future__ import annotations

import jinja2

PAY_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>{{ title }}</title>
<style>
body{margin:0;background:#f3f5f4;color:#1d2421;
  font:17px/1.6 -apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif}
main{max-width:460px;margin:0 auto;padding:20px 16px}
.card{background:#fff;border-radius:14px;padding:20px 18px;
  box-shadow:0 1px 3px rgba(0,0,0,.08)}
.amount{font-size:44px;font-weight:700;text-align:center;margin:8px 0}
table{width:100%;border-collapse:collapse;font-size:15px}td{padding:4px 0}td.r{text-align:right}
button{display:block;width:100%;margin-top:16px;min-height:52px;font-size:19px;font-weight:600;
  border:0;border-radius:10px;background:#1a7f4b;color:#fff}
.demo{background:#fff6e0;color:#7a5300;border-radius:10px;padding:8px 12px;font-size:14px}
.status{font-size:22px;font-weight:600;text-align:center}
.paid{color:#1a7f4b}.bad{color:#a1261b}
</style>
</head>
<body><main>
<h1>{{ title }}</h1>
<section class="card">
<p class="amount" id="amount">¥{{ "%.2f"|format(payment.amount) }}</p>
<table>
{% for it in payment["items"] %}
<tr><td>{{ it.name }} × {{ it.qty }}</td>
<td class="r">¥{{ "%.2f"|format(it.price * it.qty) }}</td></tr>
{% endfor %}
</table>
{% if payment.status == "pending" and demo %}
<p class="demo">演示支付：不会真实扣款。正式使用时此处为微信支付/支付宝。</p>
<form method="post" action="/pay/{{ payment.id }}/confirm">
<button type="submit" id="confirm">确认支付</button></form>
{% elif payment.status == "pending" %}
<p class="status" id="status">请用微信或支付宝完成付款</p>
{% else %}
<p class="status {{ 'paid' if payment.status == 'paid' else 'bad' }}" id="status">
{{ status_text }}</p>
{% endif %}
</section>
</main></body>
</html>
"""
)
