import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from gome.tools.llm.edits import EditError, apply_edits, parse_edits
from gome.tools.llm.structured import CACHE_PREFIX, LLMCaller, mark_cache
from tests.fakes.chat import ScriptedChatModel
from tests.fakes.scripts import PLAIN_LOGREG, SCALED_LOGREG


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


# The change from PLAIN_LOGREG to SCALED_LOGREG as a model writes it: two blocks, inside a fence, with prose.
SCALE_EDITS = (
    "I will standardize the features.\n```python\n"
    + block("from sklearn.linear_model import LogisticRegression\n",
            "from sklearn.linear_model import LogisticRegression\nfrom sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler\n")
    + block("    return LogisticRegression(max_iter=50)\n",
            "    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))\n")
    + "```\n")


def test_edits_turn_one_script_into_the_other_exactly():
    edits = parse_edits(SCALE_EDITS)
    assert len(edits) == 2
    assert apply_edits(PLAIN_LOGREG, edits) == SCALED_LOGREG.replace("standardized features + logistic regression",
                                                                     "logistic regression on raw features, 5-fold CV")


def test_a_search_without_its_trailing_spaces_still_matches_one_place():
    code = "a = 1   \nb = 2\nc = 3\n"
    assert apply_edits(code, parse_edits(block("a = 1\nb = 2\n", "a = 10\nb = 2\n"))) == "a = 10\nb = 2\nc = 3\n"


@pytest.mark.parametrize("reply, why", [
    (block("x = 1\n", "x = 2\n"), "matches no places"),
    (block("y = 0\n", "y = 1\n"), "matches 2 places"),
    (block("\n", "z = 1\n"), "empty SEARCH"),
    ("<<<<<<< SEARCH\ny = 0\n=======\ny = 1\n", "incomplete"),  # cut off by the token limit
    ("Here is the fix.", "no edit block"),
])
def test_an_edit_that_cannot_apply_says_why(reply, why):
    with pytest.raises(EditError, match=why):
        apply_edits("y = 0\nprint(y)\ny = 0\n", parse_edits(reply))


def test_fences_around_a_side_are_not_part_of_it_and_an_edit_must_change_something():
    fenced = "<<<<<<< SEARCH\n```python\na = 1\n```\n=======\n```python\na = 2\n```\n>>>>>>> REPLACE\n"
    assert apply_edits("a = 1\nb = 1\n", parse_edits(fenced)) == "a = 2\nb = 1\n"
    with pytest.raises(EditError, match="change nothing"):
        apply_edits("a = 1\n", parse_edits(block("a = 1\n", "a = 1\n")))


def test_blocks_apply_in_order_each_to_the_result_of_the_last():
    reply = block("a = 1\n", "a = 2\n") + block("a = 2\n", "a = 3\n")
    assert apply_edits("a = 1\n", parse_edits(reply)) == "a = 3\n"


def messages():
    return [SystemMessage("system"), HumanMessage("brief and rules. The change: scale the features.")]


def test_edits_that_apply_make_the_script_in_one_call():
    model = ScriptedChatModel(replies=[SCALE_EDITS])
    caller = LLMCaller(model, "apply-momentum")
    code, edit = caller.write_edit(messages(), PLAIN_LOGREG)
    assert "make_pipeline(StandardScaler()" in code and "LogisticRegression(max_iter=50)" not in code
    assert edit == {"form": "edits", "applied": True, "blocks": 2, "error": None}
    assert caller.usage["llm_calls"] == 1


def test_edits_that_do_not_apply_are_followed_by_a_request_for_the_whole_script():
    model = ScriptedChatModel(replies=[block("    return LogisticRegression(max_iter=5)\n", "    return None\n"),
                                       f"```python\n{SCALED_LOGREG}```"])
    caller = LLMCaller(model, "apply-momentum")
    code, edit = caller.write_edit(messages(), PLAIN_LOGREG)
    assert code == SCALED_LOGREG
    assert edit["form"] == "script" and edit["applied"] is False and "matches no places" in edit["error"]
    # The second ask continues the conversation (the server's cache holds it): the failed edit and why it failed.
    second = model.calls[1]["prompt"]
    assert second.startswith(model.calls[0]["prompt"]) and "Those edits cannot be used: block 1's SEARCH" in second


def test_edits_that_break_the_syntax_are_not_used():
    model = ScriptedChatModel(replies=[block("def make_model():\n", "def make_model(:\n"),
                                       f"```python\n{SCALED_LOGREG}```"])
    code, edit = LLMCaller(model, "repair").write_edit(messages(), PLAIN_LOGREG)
    assert code == SCALED_LOGREG and edit["error"].startswith("SyntaxError")


def test_a_whole_script_in_reply_to_an_edit_request_is_taken_but_a_fragment_is_not():
    whole = ScriptedChatModel(replies=[f"```python\n{SCALED_LOGREG}```"])
    code, edit = LLMCaller(whole, "apply-momentum").write_edit(messages(), PLAIN_LOGREG)
    assert code == SCALED_LOGREG and edit["form"] == "script" and len(whole.calls) == 1
    fragment = ScriptedChatModel(replies=["```python\ndef make_model():\n    return None\n```",
                                          f"```python\n{SCALED_LOGREG}```"])
    code, edit = LLMCaller(fragment, "apply-momentum").write_edit(messages(), PLAIN_LOGREG)
    assert code == SCALED_LOGREG and edit["error"] == "the reply holds no edit block" and len(fragment.calls) == 2


class ChatAnthropicStandIn:
    """Named like langchain-anthropic's model: only the class name decides how messages are marked."""


def test_anthropic_gets_a_cache_breakpoint_after_the_shared_prefix_and_others_get_plain_text():
    shared = "brief and rules\n\n"
    ask = [SystemMessage("system"),
           HumanMessage(shared + "diagnose this", additional_kwargs={CACHE_PREFIX: len(shared)})]
    assert mark_cache(ScriptedChatModel(replies=[]), ask) == ask
    system, human = mark_cache(ChatAnthropicStandIn(), ask)
    assert system == ask[0]
    assert human.content == [{"type": "text", "text": shared, "cache_control": {"type": "ephemeral"}},
                             {"type": "text", "text": "diagnose this"}]


def test_a_whole_script_with_the_prompt_s_words_pasted_after_it_is_taken_as_write_script_takes_it():
    echoed = f"```python\n{SCALED_LOGREG}The change: scale the features.\n```"  # a line of the prompt, not code
    model = ScriptedChatModel(replies=[echoed])
    code, edit = LLMCaller(model, "apply-momentum").write_edit(messages(), PLAIN_LOGREG)
    assert code.startswith(SCALED_LOGREG) and "# The change: scale the features." in code and len(model.calls) == 1
