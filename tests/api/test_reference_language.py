"""The API reference page shows the OpenAPI document's prose (summaries, descriptions of
operations, parameters, schemas, properties and answers) in the page's language, while the
document itself stays in English, for programs."""

import html
import re

import pytest

from portal.api import openapi
from portal.api.reference import translated

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
#: Five English words in a row (a sentence left untranslated).
ENGLISH_RUN = re.compile(r"[A-Za-z][\w'’-]*(?:[\s,;:()]+[A-Za-z][\w'’-]*){4,}")


def prose_strings(node, inside_example=False):
    """Every summary and description in the document (not the request examples' values)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("summary", "description") and isinstance(value, str) and not inside_example:
                yield value
            else:
                yield from prose_strings(value, inside_example or key in ("example", "examples"))
    elif isinstance(node, list):
        for value in node:
            yield from prose_strings(value, inside_example)


def words_outside_code(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{2,}", re.sub(r"`[^`]*`", " ", text))


def reference_text(page: str) -> str:
    """The reference's text, without its code spans and examples."""
    body = page[page.index('<section class="api-reference">') :]
    body = re.sub(r"<pre.*?</pre>|<code[^>]*>.*?</code>", " ", body, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_every_sentence_of_the_document_has_a_chinese_translation(app):
    document = openapi.build(app)
    untranslated = []
    with app.test_request_context("/api/docs?lang=zh"):
        for text in set(prose_strings(document)):
            if len(words_outside_code(text)) < 2:  # "PEM", "base64", refusals' codes alone
                continue
            chinese = translated(text)
            if chinese == text or not CJK.search(chinese):
                untranslated.append(text)
            # The code spans are the document's, as they are.
            assert sorted(re.findall(r"`[^`]+`", chinese)) == sorted(re.findall(r"`[^`]+`", text)), text
    assert not untranslated, f"mark them N_ and translate them (scripts/i18n.py update): {untranslated}"


def test_the_chinese_page_shows_the_prose_in_chinese(client):
    response = client.get("/api/docs?lang=zh")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for chinese in (
        "注销证明",  # a summary
        "履约注销仅限 CCER，且不超过该机构当年申报配额的 5 %。",  # an operation's description
        "批次编号，例如 <code>CF-FOR-2022-001</code>。",  # a parameter's
        "同一批次中的若干吨，以平台序列号表示（从 1 开始，含首尾）。",  # a schema's
        "规范化 JSON：签名所覆盖的内容。",  # a property's
        "<code>invalid_api_key</code>：未提供密钥，或密钥未知或已撤销。",  # a shared answer's
        "<code>registry_serial_count</code>：错误消息会指明出错的字段。",  # a refusal's, after its codes
        "<code>Authorization: Bearer &lt;api key&gt;</code>。机构的密钥",  # authentication
    ):
        assert chinese in page, chinese
    text = reference_text(page)
    assert ENGLISH_RUN.findall(text) == []
    assert "Compliance retirements" not in page and "Whole tonnes of CO2e" not in page


def test_the_english_page_keeps_the_document_english(client):
    page = client.get("/api/docs?lang=en").get_data(as_text=True)
    for english in (
        "A retirement certificate",
        "Compliance retirements are CCER only and capped at 5 % of the allowances the organisation "
        "declared for the year.",
        "The batch&#39;s code, e.g. <code>CF-FOR-2022-001</code>.",
        "<code>registry_serial_count</code>: The message names the field at fault.",
    ):
        assert english in page, english
    assert not CJK.search(reference_text(page))


@pytest.mark.parametrize("first", ["/api/docs?lang=zh", "/api/docs?lang=en"])
def test_the_document_stays_english_whatever_the_page_showed(app, client, first):
    assert client.get(first).status_code == 200
    response = client.get("/api/v1/openapi.json", headers={"Accept-Language": "zh-CN"})
    served = response.get_json()
    assert served == openapi.build(app)
    prose = list(prose_strings(served))
    assert len(prose) > 100
    assert [text for text in prose if CJK.search(text)] == []
    body = response.get_data(as_text=True)
    assert "capped at 5 % of the allowances" in body and "%%" not in body
    assert served["paths"]["/certificates/{number}"]["get"]["summary"] == "A retirement certificate"
