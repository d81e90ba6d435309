import pytest

from gome.tools.task.loading import TaskError, describe_data, load_task


def test_loads_example_with_task_toml(breast_cancer):
    task = load_task(breast_cancer)
    assert (task.metric, task.direction, task.id_column) == ("roc_auc", "maximize", "id")
    assert task.target_columns == ["benign"] and task.submission_columns == ["benign"]
    assert task.data_dir.endswith("public")  # the agent's data never includes private/
    assert "Breast cancer" in task.description


def test_public_folder_alone_needs_the_metric_from_the_command_line(breast_cancer):
    public = breast_cancer / "public"
    with pytest.raises(TaskError, match="no metric"):
        load_task(public)
    task = load_task(public, {"metric": "roc_auc", "positive_label": "1"})
    assert task.metric == "roc_auc" and task.id_column == "id" and task.target_columns == ["benign"]


def test_every_problem_is_reported_at_once(breast_cancer):
    public = breast_cancer / "public"
    (public / "test.csv").unlink()
    (public / "train.csv").write_bytes(b"\xff\xfe\x00garbage\x00\n\x00\x01")
    (public / "sample_submission.csv").write_text("row,benign\n1,0.5\n")
    (breast_cancer / "task.toml").write_text('metric = "bleu"\nid_column = "id"\n')
    with pytest.raises(TaskError) as err:
        load_task(breast_cancer)
    text = str(err.value)
    assert "missing test data: test.csv" in text
    assert "train.csv: unreadable CSV" in text
    assert "unknown metric 'bleu'" in text
    assert "sample submission lacks the id column 'id'" in text
    assert len(err.value.problems) >= 4


def test_missing_description_and_bad_toml(breast_cancer):
    (breast_cancer / "public" / "description.md").unlink()
    (breast_cancer / "task.toml").write_text("metric = [oops\n")
    with pytest.raises(TaskError) as err:
        load_task(breast_cancer)
    assert any("description.md" in p for p in err.value.problems)
    assert any("not valid TOML" in p for p in err.value.problems)


def test_contradicting_direction_and_unknown_keys(breast_cancer):
    (breast_cancer / "task.toml").write_text('metric = "rmse"\ndirection = "maximize"\ntarget = "benign"\n')
    with pytest.raises(TaskError) as err:
        load_task(breast_cancer)
    assert any("contradicts metric 'rmse'" in p for p in err.value.problems)
    assert any("unknown key(s) ['target']" in p for p in err.value.problems)


def test_not_a_folder(tmp_path):
    with pytest.raises(TaskError, match="is not a folder"):
        load_task(tmp_path / "nope")


def test_schema_for_prompts_names_columns_types_and_format(breast_cancer):
    text = describe_data(load_task(breast_cancer))
    for needle in ("mean radius: float64", "id column 'id'", "target column(s) ['benign']", "id,benign",
                   "455 rows", "0: 170, 1: 285"):
        assert needle in text
