"""The script folder's quota: images only in a private folder, sized against the live ones, swept after a kill."""

import os
import subprocess
import threading
import time

import pytest

from gome.tools.sandbox import quota
from gome.tools.sandbox.isolation import probe


def needs_quota():
    if not probe().quota:
        message = f"the quota link is not available here: {'; '.join(probe().missing)}"
        if os.environ.get("GOME_REQUIRE_SANDBOX"):
            pytest.fail(message)
        pytest.skip(message)


def test_images_are_made_only_in_a_private_folder(tmp_path, monkeypatch):
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o777)
    os.chmod(planted, 0o777)
    monkeypatch.setenv("GOME_QUOTA_DIR", str(planted))
    with pytest.raises(quota.QuotaError, match="mode 0700"):
        quota.image_dir()
    os.symlink(tmp_path, tmp_path / "link")
    monkeypatch.setenv("GOME_QUOTA_DIR", str(tmp_path / "link"))
    with pytest.raises(quota.QuotaError):
        quota.image_dir()
    monkeypatch.setenv("GOME_QUOTA_DIR", str(tmp_path / "fresh"))
    assert oct(quota.image_dir().stat().st_mode)[-3:] == "700"


def attached(image) -> bool:
    return bool(device_of(image))


def device_of(image) -> str:
    held = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout.strip()
    return held.split(":", 1)[0]


def test_a_flood_fills_only_its_own_image_and_a_killed_runs_image_is_swept(tmp_path, monkeypatch):
    needs_quota()
    monkeypatch.setenv("GOME_QUOTA_DIR", str(tmp_path / "images"))
    work = tmp_path / "work"
    work.mkdir()
    with quota.quota_mount(work, size=16 << 20, inodes=500):
        with pytest.raises(OSError):
            (work / "flood").write_bytes(b"x" * (32 << 20))
        [used] = [i for i in (tmp_path / "images").glob("*.img") if str(work) in quota._mount_points_of(device_of(i))]
    quota._spares.settle()
    assert not used.exists() and not os.path.ismount(work)  # the used image is deleted
    [spare] = list((tmp_path / "images").glob("*.img"))  # the next run's, formatted, attached and mounted ahead
    device, stage = device_of(spare), str(spare.with_suffix(".mnt"))
    assert device and quota._mount_points_of(device) == [stage]  # only at its stage, in the private folder
    with quota.quota_mount(work, size=16 << 20, inodes=500):  # the next run gets that spare, empty
        assert quota._mount_points_of(device) == [stage, str(work)] and os.listdir(work) == []
        options = next(line.split()[5] for line in open("/proc/self/mountinfo") if line.split()[4] == str(work))
        assert {"nosuid", "nodev"} <= set(options.split(","))  # what the stage was mounted with
    quota._spares.settle()
    assert not spare.exists() and not attached(spare) and not os.path.exists(stage)
    quota._spares.close()  # at exit: the spare made ahead is unmounted, detached and deleted
    assert os.listdir(tmp_path / "images") == [".devices.lock"]  # no image, stage or mount left

    # A gome killed mid-run: its image stays mounted. The next one detaches and deletes it.
    dead = subprocess.run(["true"]).args and 2 ** 22 - 7  # a pid no process has here
    image = tmp_path / "images" / f"{dead}-left.img"
    os.truncate(open(image, "wb").name, 16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    stage = image.with_suffix(".mnt")
    stage.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(stage)], check=True)
    subprocess.run(["mount", "--bind", str(stage), str(work)], check=True)
    assert os.path.ismount(work) and os.path.ismount(stage)
    quota.sweep(tmp_path / "images")
    assert not os.path.ismount(work) and not image.exists() and not stage.exists()


def test_a_sweep_waits_while_another_gome_attaches_a_loop_device(tmp_path, monkeypatch):
    """Loop device names are reused: a sweep that looked a dead image's device up must not detach that name after
    another gome attached its new image there. Sweeps and attaches take the images' folder lock in turn."""
    needs_quota()
    monkeypatch.setenv("GOME_QUOTA_DIR", str(tmp_path / "images"))
    images = quota.image_dir()
    dead = images / f"{2 ** 22 - 7}-left.img"  # a pid no process has here
    dead.write_bytes(b"")
    with quota._devices_lock(images):  # another gome, between `losetup --find` and its mount
        sweeper = threading.Thread(target=quota.sweep, args=(images,))
        sweeper.start()
        sweeper.join(0.5)
        assert sweeper.is_alive() and dead.exists()  # waiting, not sweeping
    sweeper.join(10)
    assert not sweeper.is_alive() and not dead.exists()


def test_a_used_image_is_released_when_the_next_run_starts_or_soon_after_its_own_ended(tmp_path, monkeypatch):
    """Releasing an image (umount, losetup, unlink) between two runs took the cores from scoring and judging: it
    waits for the next run's start, at most RELEASE_AFTER_S."""
    needs_quota()
    monkeypatch.setenv("GOME_QUOTA_DIR", str(tmp_path / "images"))
    work = tmp_path / "work"
    work.mkdir()

    def run_once():  # the image and loop device a run used
        with quota.quota_mount(work, size=16 << 20, inodes=500):
            [image] = [i for i in (tmp_path / "images").glob("*.img")
                       if str(work) in quota._mount_points_of(device_of(i))]
            return image, device_of(image)

    def released(image, device, within_s=10.0) -> bool:
        deadline = time.monotonic() + within_s
        while image.exists() or quota._attached(device, image):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    monkeypatch.setattr(quota, "RELEASE_AFTER_S", 60.0)  # longer than this part takes: only a run start releases
    first, first_device = run_once()
    assert first.exists() and quota._attached(first_device, first)  # kept between runs
    second, second_device = run_once()
    assert released(first, first_device)  # the second run's start released the first run's image
    assert second.exists() and quota._attached(second_device, second)
    quota._spares.settle()  # a clean exit does not wait for the next run
    assert not second.exists() and not quota._attached(second_device, second)
    quota._spares.close()  # as at exit: the 60 s timer is cancelled (nothing is left for it to release)

    monkeypatch.setattr(quota, "RELEASE_AFTER_S", 0.3)
    third, third_device = run_once()
    fourth, fourth_device = run_once()  # at once: the timer set at the third's end may still be waiting
    assert released(third, third_device)
    assert released(fourth, fourth_device)  # no further run: released after RELEASE_AFTER_S all the same
    quota._spares.close()
    assert os.listdir(tmp_path / "images") == [".devices.lock"]
