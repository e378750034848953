"""Escaping of outside text: whatever goes in renders as itself (GitHub's cmark-gfm), and nothing more."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from support.report_render import ZWSP, rendered

from perfgate.report.escape import clean, clip, html_text, md_code_block, md_text, mermaid_text, plot_text

# Text that stresses Markdown: its special characters, HTML, URLs, mentions, references, control characters.
HOSTILE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(list("\\`*_{}[]()#+-.!|~<>&\"'=:@$%/ \t\n\r\x00\x1b\u202e\u200b")),
        st.sampled_from(["<script>", "-->", "<!--", "http://", "https://x.y", "www.", "javascript:", "#12",
                         "@team", "![a](b)", "[a](b)", "&amp;", "&#64;", "```", "1. ", "- ", "# ", "> "]),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=20,
).map("".join)


def _shown(markdown_text: str) -> str:
    """What a reader sees: rendered text without the zero-width spaces that break pings and links."""
    return "".join(rendered(markdown_text).prose).replace(ZWSP, "").strip("\n").strip(" ")


def _expected(text: str) -> str:
    return clean(text).replace(ZWSP, "").strip(" ")


@settings(max_examples=150, deadline=None)
@given(HOSTILE_TEXT)
def test_any_text_in_a_table_cell_renders_as_itself_in_one_cell(text):
    table = f"| a | b |\n| --- | --- |\n| {md_text(text)} | end |\n"
    page = rendered(table)
    assert page.tag_names <= {"table", "thead", "tbody", "tr", "th", "td"}, page.tag_names
    rows = page.tables[0]
    assert rows[1][1] == "end" and len(rows[1]) == 2
    assert rows[1][0].replace(ZWSP, "").strip(" ") == _expected(text)


@settings(max_examples=150, deadline=None)
@given(HOSTILE_TEXT)
def test_any_text_starting_a_list_item_renders_as_itself(text):
    page = rendered(f"- {md_text(text, line_start=True)}\n")
    assert page.tag_names <= {"ul", "li"}, page.tag_names
    assert _shown(f"- {md_text(text, line_start=True)}\n") == _expected(text)


def test_the_issue_s_hostile_names_are_inert():
    for name, shown in [("main.(*T).<script>alert(1)</script>", "main.(*T).<script>alert(1)</script>"),
                        ("a|b", "a|b"), ("`code`", "`code`"), ("-->", "-->"), ("@everyone", "@everyone"),
                        ("[x](javascript:y)", "[x](javascript:y)")]:
        markdown = md_text(name, line_start=True)
        assert "<" not in markdown and ">" not in markdown and "|" not in markdown and "`" not in markdown
        assert _shown(markdown) == shown


def test_mentions_references_and_links_are_broken_with_a_zero_width_space():
    markdown = md_text("ping @everyone about #42, see https://example.invalid and www.example.invalid")
    assert "@&#8203;everyone" in markdown and "#&#8203;42" in markdown
    assert "https:&#8203;//" in markdown and "www&#8203;.example" in markdown
    page = rendered(markdown)
    assert "a" not in page.tag_names


def test_control_and_bidi_characters_become_visible_replacement_characters():
    assert clean("a\x00b\x1b[31mc\u202ed\ne\tf") == "a\ufffdb\ufffd[31mc\ufffdd e f"
    assert html_text("<b>\u2066x</b>") == "&lt;b&gt;\ufffdx&lt;/b&gt;"


def test_clip_keeps_both_ends():
    assert clip("abcdefghijklmnopqrstuvwxyz", 10) == "abcdef…xyz"
    assert clip("short", 10) == "short"
    assert len(md_text("x" * 1000, 50).replace("&#8203;", "")) == 50


def test_clip_cuts_a_sentence_between_words():
    reason = ("cpu_per_request: too noisy to tell: worse +2.3% [+1.3%, +3.3%] (90.7% CI), but an increase of up "
              "to +3.3% (95.3% one-sided bound) cannot be ruled out, beyond the 3.0% threshold; Add repetitions")
    clipped = clip(reason, 120)
    head, tail = clipped.split("…")
    assert len(clipped) <= 120 and head.endswith(" ") and tail.startswith(" ")
    assert reason.startswith(head) and reason.endswith(tail)
    assert head.split()[-1] in reason.split() and tail.split()[0] in reason.split()


def test_code_block_fence_outgrows_any_backtick_run_in_the_text():
    block = md_code_block("a ``` b\n`````\n<!-- c -->", "sh; rm")
    first, *body, last = block.splitlines()
    assert first == "``````shrm" and last == "``````"
    assert body == ["a ``` b", "`````", "<\u200b!-- c --\u200b>"]
    page = rendered(block)
    assert [t for t, _ in page.tags] == ["pre", "code"]


def test_mermaid_and_plot_text_keep_to_safe_characters():
    assert mermaid_text('p95 "x" %%{init}%% <b>;\n`y`') == "p95 x init b y"
    assert re.fullmatch(r"[\w .,:()/+=-]*", mermaid_text("".join(chr(c) for c in range(32, 127))))
    assert plot_text("cost $5 and $6") == r"cost \$5 and \$6"
