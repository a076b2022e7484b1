"""Curated mutation check: plant each known-dangerous bug in a copy of the repository and see
that a test named for it fails.

    FIQA_SHARED=/path/to/shared .venv/bin/python tools/mutants.py            # every mutant
    FIQA_SHARED=... .venv/bin/python tools/mutants.py --only loss,edc        # some groups
    FIQA_SHARED=... .venv/bin/python tools/mutants.py --list

Each mutant replaces one exact snippet of one file (which must occur exactly once, so a
refactoring that moves the code makes the mutant fail loudly instead of silently testing
nothing) and names the tests that must catch it. Only those tests run, in a temporary copy
of the working tree (tracked and untracked, not ignored, files). A mutant counts as killed
only when one of its named tests fails; a failure of any other test (a collection error, a
broken fixture) does not count. The named tests are first run unmutated and must pass.
Survivors are printed; the exit status is 1 when there is one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    group: str
    name: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]  # pytest node ids (file::function); any of them failing kills it


T_INPUT = "tests/test_model_input.py"
T_LOSS = "tests/test_loss.py"
T_EDC = "tests/test_edc.py"
T_EXPORT = "tests/test_export.py"
T_CHOICE = "tests/test_face_choice.py"
T_SCORE = "tests/test_score_cli.py"
T_TRAIN = "tests/test_train.py"
T_CAL = "tests/test_calibration.py"
T_BASE = "tests/test_baselines.py"
CAL_FIT = "fiqa_cli/evaluation/calibration_fit.py"
T_BOOT = "tests/test_bootstrap.py"
T_RECORD = "tests/test_model_record.py"
RECORD = "fiqa_cli/runtime/model_record.py"
BOOT = "fiqa_cli/evaluation/bootstrap.py"
T_MESH = "tests/test_face_mesh.py"
MESH = "fiqa_cli/runtime/face_mesh.py"
T_OCCL = "tests/test_occlusion.py"
OCCL = "fiqa_cli/runtime/occlusion.py"
T_LIMITS = "tests/test_decode_limits.py"
T_WRITES = "tests/test_safe_writes.py"
T_HOSTILE = "tests/test_hostile.py"
T_PIPE = "tests/test_pipeline.py"
T_DETECT = "tests/test_detect.py"
T_PORT = "tests/test_portability.py"
T_API = "tests/test_api.py"
T_BUFFERS = "tests/test_device_buffers.py"
T_PROGRESS = "tests/test_progress.py"
T_ROWS = "tests/test_rows.py"
T_PARQUET = "tests/test_parquet_rows.py"
T_MESH_MEASURES = "tests/test_mesh_measures.py"
POSE = "fiqa_cli/runtime/mesh_pose.py"
T_COMP = "tests/test_compression.py"
COMP = "fiqa_cli/runtime/compression.py"
T_MEASURES = "tests/test_measures.py"
MEASURES_PY = "fiqa_cli/runtime/measures.py"

MUTANTS = (
    Mutant("preprocessing", "no BGR->RGB flip", "fiqa_cli/runtime/model_input.py",
           "batch = batch[..., ::-1]", "batch = batch",
           (f"{T_INPUT}::test_crops_become_rgb_in_minus_one_to_one_nchw",
            f"{T_INPUT}::test_a_model_without_metadata_is_fed_the_contract")),
    Mutant("preprocessing", "std multiplies", "fiqa_cli/runtime/model_input.py",
           "gain = (pixel_scale / std)", "gain = (pixel_scale * std)",
           (f"{T_INPUT}::test_crops_become_rgb_in_minus_one_to_one_nchw",)),
    Mutant("preprocessing", "mean not subtracted", "fiqa_cli/runtime/model_input.py",
           "tensor = batch.astype(np.float32) * gain + offset",
           "tensor = batch.astype(np.float32) * gain",
           (f"{T_INPUT}::test_crops_become_rgb_in_minus_one_to_one_nchw",)),
    Mutant("quality model", "colour order metadata ignored", "fiqa_cli/runtime/quality_model.py",
           "color_order=self.color_order,", "color_order=contract.COLOR_ORDER,",
           (f"{T_INPUT}::test_a_model_is_fed_as_its_metadata_declares",)),
    Mutant("quality model", "mean metadata ignored", "fiqa_cli/runtime/quality_model.py",
           "mean=self.mean,", "mean=contract.MEAN,",
           (f"{T_INPUT}::test_a_model_is_fed_as_its_metadata_declares",)),
    Mutant("quality model", "std metadata ignored", "fiqa_cli/runtime/quality_model.py",
           "std=self.std,", "std=contract.STD,",
           (f"{T_INPUT}::test_a_model_is_fed_as_its_metadata_declares",)),
    Mutant("quality model", "fixed batch size ignored", "fiqa_cli/runtime/quality_model.py",
           "step = self._max_batch or len(tensor)", "step = len(tensor)",
           (f"{T_INPUT}::test_a_fixed_batch_model_is_run_that_many_crops_at_a_time",)),
    Mutant("loss", "CR without the +1", "export/loss.py",
           "ratio = ccs / (nnccs + 1.0 + CR_EPSILON)", "ratio = ccs / (nnccs + CR_EPSILON)",
           (f"{T_LOSS}::test_certainty_ratio_of_known_cosines",)),
    Mutant("loss", "own class counted in NNCCS", "export/loss.py",
           "others = cosines.scatter(1, labels[:, None], -2.0)", "others = cosines",
           (f"{T_LOSS}::test_certainty_ratio_of_known_cosines",)),
    Mutant("loss", "margin with the wrong sign", "export/loss.py",
           "with_margin = target * math.cos(margin) - sine * math.sin(margin)",
           "with_margin = target * math.cos(margin) + sine * math.sin(margin)",
           (f"{T_LOSS}::test_margin_changes_the_target_class_only",)),
    Mutant("loss", "SmoothL1 beta 1", "export/loss.py",
           "target, beta=0.5)", "target, beta=1.0)",
           (f"{T_LOSS}::test_loss_parts_add_up_and_targets_get_no_gradient",)),
    Mutant("loss", "mask ignored in the cross-entropy", "export/loss.py",
           "classification = (per_sample * weights).sum() / weights.sum().clamp_min(1.0)",
           "classification = per_sample.mean()",
           (f"{T_LOSS}::test_unclassified_samples_get_a_target_but_teach_the_classifier_nothing",)),
    Mutant("edc", "pair quality is the higher one", "fiqa_cli/evaluation/edc.py",
           "pair_quality = np.minimum(", "pair_quality = np.maximum(",
           (f"{T_EDC}::test_curve_of_distinct_qualities",
            f"{T_EDC}::test_curve_matches_a_direct_count_on_random_data_with_ties")),
    Mutant("edc", "score at the threshold matches", "fiqa_cli/evaluation/edc.py",
           "false_non_match = np.asarray(mated_scores) <= threshold",
           "false_non_match = np.asarray(mated_scores) < threshold",
           (f"{T_EDC}::test_score_equal_to_threshold_is_a_non_match",)),
    Mutant("edc", "ties discarded one by one", "fiqa_cli/evaluation/edc.py",
           'np.searchsorted(sorted_qualities, levels, side="right")',
           'np.searchsorted(sorted_qualities, levels, side="left")',
           (f"{T_EDC}::test_tied_qualities_are_discarded_together",
            f"{T_EDC}::test_curve_matches_a_direct_count_on_random_data_with_ties")),
    Mutant("edc", "threshold rank rounded up", "fiqa_cli/evaluation/edc.py",
           "return math.floor(fmr * self.count + _FLOOR_SLACK)",
           "return math.ceil(fmr * self.count)",
           (f"{T_EDC}::test_threshold_never_exceeds_target_fmr_with_tied_scores",
            f"{T_EDC}::test_threshold_rank_survives_floating_point_products")),
    Mutant("edc", "pAUC not cut at max discard", "fiqa_cli/evaluation/edc.py",
           "np.minimum(ends, max_discard) - starts", "np.minimum(ends, 1.0) - starts",
           (f"{T_EDC}::test_curve_of_distinct_qualities",
            f"{T_EDC}::test_curve_matches_a_direct_count_on_random_data_with_ties")),
    Mutant("bootstrap", "comparisons resampled, not identities", BOOT,
           "self.pair_identity = self.sample_identity[self.mated_a]",
           "self.pair_identity = np.random.default_rng(0).permutation(len(self.mated_a)) "
           "% identity_count",
           (f"{T_BOOT}::test_interval_is_as_wide_as_the_spread_over_fresh_sets_of_identities",
            f"{T_BOOT}::test_resampled_pauc_is_the_edc_of_the_resampled_set_written_out")),
    Mutant("bootstrap", "photos counted once in every draw", BOOT,
           "discarded = _after_each_level(weights * self.photos, self.level_end)",
           "discarded = _after_each_level(0 * weights + self.photos, self.level_end)",
           (f"{T_BOOT}::test_resampled_pauc_is_the_edc_of_the_resampled_set_written_out",)),
    Mutant("bootstrap", "each method drawn apart (unpaired)", BOOT,
           "paucs = resampler.paucs(method_qualities, thresholds, counts, max_discard)",
           "paucs = resampler.paucs(method_qualities, thresholds, "
           "draw_identities(len(names), draws, rng), max_discard)",
           ("tests/test_evaluate_cli.py::"
            "test_bootstrap_gives_intervals_and_paired_differences_against_the_first_scores",)),
    Mutant("model record", "resume ignores the recorded model", RECORD,
           "if found is not None and found.model_sha256 == record.model_sha256:",
           "if True:",
           (f"{T_RECORD}::test_resume_refuses_rows_of_another_model_or_calibration",)),
    Mutant("model record", "an unrecorded output continued by any model", RECORD,
           "file_sha256(legacy) != record.model_sha256:",
           "False:",
           (f"{T_RECORD}::test_an_output_without_a_record_is_continued_by_v5_only",)),
    Mutant("model record", "a fresh run leaves the old record", "fiqa_cli/commands/score.py",
           "    write_record(Path(out), record)\n    return None", "    return None",
           (f"{T_RECORD}::test_resume_refuses_rows_of_another_model_or_calibration",
            f"{T_RECORD}::test_a_run_records_its_model_beside_out_and_resume_continues_it")),
    Mutant("several roots", "two roots' identities of one name merged",
           "fiqa_cli/evaluation/samples.py",
           'Sample(sample.path, f"{position}:{sample.identity}")', "sample",
           (f"{T_CAL}::test_calibrate_takes_several_roots_and_keeps_their_identities_apart",)),
    Mutant("export parity", "fp32 tolerance 1e-1", "export/onnx_export.py",
           '"fp32": 1e-4', '"fp32": 1e-1',
           (f"{T_EXPORT}::test_parity_tolerances_are_the_documented_ones",)),
    Mutant("export parity", "fp16 tolerance 1.0", "export/onnx_export.py",
           '"fp16": 1e-2', '"fp16": 1.0',
           (f"{T_EXPORT}::test_parity_tolerances_are_the_documented_ones",)),
    Mutant("export parity", "quality left out of the verdict", "export/onnx_export.py",
           "return max(self.embedding, self.quality) <= self.tolerance",
           "return self.embedding <= self.tolerance",
           (f"{T_EXPORT}::test_parity_measures_the_quality_output",
            f"{T_EXPORT}::test_export_with_a_nudged_quality_head_is_refused")),
    Mutant("export parity", "quality compared with itself", "export/onnx_export.py",
           "quality=relative_difference(reference[1], candidate[1])",
           "quality=relative_difference(reference[1], reference[1])",
           (f"{T_EXPORT}::test_parity_measures_the_quality_output",
            f"{T_EXPORT}::test_export_with_a_nudged_quality_head_is_refused")),
    Mutant("face choice", "last face wins a tie", "fiqa_cli/runtime/face_choice.py",
           "return int(np.argmin(distances))",
           "return len(faces) - 1 - int(np.argmin(distances[::-1]))",
           (f"{T_CHOICE}::test_equal_distances_keep_the_larger_face",)),
    Mutant("face choice", "width and height swapped", "fiqa_cli/runtime/face_choice.py",
           "height, width = image_size", "width, height = image_size",
           (f"{T_CHOICE}::test_central_is_the_face_nearest_the_image_centre",)),
    Mutant("face choice", "distance |dx| + |dy|", "fiqa_cli/runtime/face_choice.py",
           "np.hypot(centres[:, 0] - width / 2, centres[:, 1] - height / 2)",
           "np.abs(centres[:, 0] - width / 2) + np.abs(centres[:, 1] - height / 2)",
           (f"{T_CHOICE}::test_central_distance_is_euclidean",)),
    Mutant("baselines", "exposure prefers extremes", "fiqa_cli/evaluation/baselines.py",
           "-abs(_grey(crop).mean() - _MID_GREY)", "abs(_grey(crop).mean() - _MID_GREY)",
           (f"{T_BASE}::test_exposure_prefers_mid_grey_to_either_extreme",)),
    Mutant("baselines", "oracle counts one side of a pair", "fiqa_cli/evaluation/baselines.py",
           "np.bincount(mated_a, mated_scores, count) + np.bincount(mated_b, mated_scores, count)",
           "np.bincount(mated_a, mated_scores, count)",
           (f"{T_BASE}::test_oracle_is_the_mean_similarity_to_a_sample_s_mates",)),
    Mutant("rows/resume", "cut-off last line kept", "fiqa_cli/runtime/rows.py",
           "if complete != path.stat().st_size:", "if False:",
           (f"{T_SCORE}::test_resume_after_a_killed_run",
            f"{T_SCORE}::test_resume_jsonl_skips_answered_inputs")),
    Mutant("rows/resume", "resume keeps the worst face", "fiqa_cli/runtime/rows.py",
           "(best is None or quality > best)", "(best is None or quality < best)",
           (f"{T_SCORE}::test_fail_under_counts_resumed_rows",)),
    Mutant("rows/resume", "answered inputs scored again", "fiqa_cli/commands/score.py",
           "if item.path not in answered and", "if",
           (f"{T_SCORE}::test_resume_after_a_killed_run",
            f"{T_SCORE}::test_resume_jsonl_skips_answered_inputs",
            f"{T_SCORE}::test_fail_under_counts_resumed_rows")),
    Mutant("outputs", "--out x.json written as CSV", "fiqa_cli/runtime/rows.py",
           "    if suffix in REFUSED_SUFFIXES:", "    if False:",
           (f"{T_ROWS}::test_outputs_that_cannot_be_what_was_asked_are_refused",)),
    Mutant("outputs", "--format contradicting --out taken", "fiqa_cli/runtime/rows.py",
           "    if requested and named and requested != named:", "    if False:",
           (f"{T_ROWS}::test_outputs_that_cannot_be_what_was_asked_are_refused",)),
    Mutant("outputs", "Parquet lost on Ctrl-C", "fiqa_cli/runtime/parquet_rows.py",
           "except BaseException as error:", "except Exception as error:",
           (f"{T_PARQUET}::test_a_run_stopped_by_an_error_or_ctrl_c_keeps_its_rows",
            f"{T_SCORE}::test_ctrl_c_keeps_the_rows_of_a_parquet_output")),
    Mutant("outputs", "Parquet schema inferred per group", "fiqa_cli/runtime/parquet_rows.py",
           "        schema=schema,\n", "",
           (f"{T_PARQUET}::test_every_row_group_has_the_one_explicit_schema",)),
    Mutant("hostile input", "decoder bytes not budgeted", "fiqa_cli/runtime/decode.py",
           "if header.decoded_bytes > budget_bytes:", "if False:",
           (f"{T_LIMITS}::test_bytes_a_pixel_and_tiles_count_in_the_budget",)),
    Mutant("hostile input", "tiles not counted", "fiqa_cli/runtime/image_header.py",
           "tile_bytes = tile * max(pixel_bytes, _TIFF_RGBA_BYTES)", "tile_bytes = 0",
           (f"{T_LIMITS}::test_bytes_a_pixel_and_tiles_count_in_the_budget",)),
    Mutant("hostile input", "JPEG scans not counted", "fiqa_cli/runtime/decode.py",
           "if header.scans > MAX_JPEG_SCANS:", "if False:",
           (f"{T_LIMITS}::test_a_jpeg_of_too_many_scans_is_refused_unread",)),
    Mutant("hostile input", "Radiance size searched for", "fiqa_cli/runtime/image_header.py",
           "_HDR_RESOLUTION.fullmatch(lines[blank + 1])", "_HDR_RESOLUTION.search(data)",
           (f"{T_LIMITS}::test_a_decoy_size_in_the_header_is_not_the_one_budgeted",)),
    Mutant("hostile input", "PAM field given twice taken", "fiqa_cli/runtime/image_header.py",
           "if words[0].upper() in fields:", "if False:",
           (f"{T_LIMITS}::test_a_pam_that_gives_its_width_twice_is_refused",)),
    Mutant("hostile input", "planted link followed", "fiqa_cli/runtime/crop_files.py",
           "write_replacing(target, cv2.imencode", "target.write_bytes(cv2.imencode",
           (f"{T_WRITES}::test_save_crops_never_writes_through_a_planted_link",)),
    Mutant("hostile input", "replaced file's mode lost", "fiqa_cli/runtime/safe_write.py",
           "    return stat.S_IMODE(mode)", "    return _NEW_FILE_MODE",
           (f"{T_WRITES}::test_a_replaced_file_keeps_its_mode_and_a_failed_write_leaves_it",)),
    Mutant("hostile input", "one quality per batch accepted", "fiqa_cli/runtime/quality_model.py",
           "or (fixed_batch and quality.shape[0] != self._max_batch)", "",
           (f"{T_HOSTILE}::test_model_contract_is_checked_at_load",)),
    Mutant("hostile input", "resume reads the whole file", "fiqa_cli/runtime/rows.py",
           "rows = ROW_FORMATS[fmt].read(_lines(stream, whole_only=True), path, True)",
           "rows = list(ROW_FORMATS[fmt].read(_lines(stream, whole_only=True), path, True))",
           (f"{T_HOSTILE}::test_resume_memory_does_not_grow_with_the_rows",)),
    Mutant("fail-under", "resumed rows not counted", "fiqa_cli/commands/score.py",
           "        for quality in answered:\n            self.add(quality)\n", "",
           (f"{T_SCORE}::test_fail_under_counts_resumed_rows",)),
    Mutant("fail-under", "worst face with --faces all", "fiqa_cli/commands/score.py",
           "return max(qualities) if qualities else None",
           "return min(qualities) if qualities else None",
           (f"{T_SCORE}::test_fail_under_with_faces_all_takes_the_best_face",)),
    Mutant("fail-under", "a score at the bar fails", "fiqa_cli/commands/score.py",
           "best_quality < self.threshold", "best_quality <= self.threshold",
           (f"{T_SCORE}::test_fail_under_with_faces_all_takes_the_best_face",
            f"{T_SCORE}::test_fail_under_gates_the_exit_code")),
    Mutant("fail-under", "no face passes the gate", "fiqa_cli/commands/score.py",
           "(best_quality is None or best_quality < self.threshold)",
           "(best_quality is not None and best_quality < self.threshold)",
           (f"{T_SCORE}::test_fail_under_counts_inputs_without_a_face",)),
    Mutant("training", "--no-classify-degraded inverted", "export/train.py",
           "classified = None if config.classify_degraded else ~degraded.to(device)",
           "classified = None if config.classify_degraded else degraded.to(device)",
           (f"{T_TRAIN}::test_no_classify_degraded_leaves_degraded_samples_out_of_the_cross_entropy",)),
    Mutant("training", "resume re-initialises the backbone", "export/train.py",
           'parts.backbone.load_state_dict(checkpoint["backbone"])',
           "parts.backbone.load_state_dict(parts.backbone.state_dict())",
           (f"{T_TRAIN}::test_resumed_run_equals_a_straight_run",)),
    Mutant("training", "resume restarts the epoch", "export/train.py",
           "done_in_epoch * config.batch_size,", "0,",
           (f"{T_TRAIN}::test_resumed_run_equals_a_straight_run",)),
    Mutant("training", "resume forgets the random state", "export/train.py",
           'torch.set_rng_state(checkpoint["rng_state"].cpu())', "pass",
           (f"{T_TRAIN}::test_resumed_run_equals_a_straight_run",)),
    Mutant("calibration", "a comparison at the threshold matches", CAL_FIT,
           "(comparisons.mated_scores <= threshold)", "(comparisons.mated_scores < threshold)",
           (f"{T_CAL}::test_photo_failures_count_comparisons_at_or_below_the_threshold",)),
    Mutant("calibration", "violators never pooled", CAL_FIT,
           "stack[-1][2] * stack[-2][3] >= stack[-2][2] * stack[-1][3]", "False",
           (f"{T_CAL}::test_the_fit_recovers_a_falling_failure_rate",
            f"{T_CAL}::test_blocks_are_shrunk_towards_the_overall_rate_and_never_promise_zero")),
    Mutant("calibration", "scale of natural logs", "fiqa_cli/runtime/calibration.py",
           "-POINTS_PER_DECADE * np.log10(fnmr)", "-POINTS_PER_DECADE * np.log(fnmr)",
           (f"{T_CAL}::test_the_scale_is_25_points_per_decade_of_fnmr",)),
    Mutant("face_mesh", "crop turned the wrong way", MESH,
           "angle = np.arctan2(", "angle = -np.arctan2(",
           (f"{T_MESH}::test_rolled_photo_rolls_the_landmarks",)),
    Mutant("face_mesh", "crop not turned", MESH,
           "angle = np.arctan2(", "angle = 0.0 * np.arctan2(",
           (f"{T_MESH}::test_rolled_photo_rolls_the_landmarks",)),
    Mutant("face_mesh", "half-pixel shift of the crop", MESH,
           "sampling[:, 2] += ", "sampling[:, 2] -= ",
           (f"{T_MESH}::test_crop_and_its_map_back_agree",)),
    Mutant("face_mesh", "no BGR->RGB flip", MESH,
           "reversed(cv2.split(crop))", "cv2.split(crop)",
           (f"{T_MESH}::test_input_is_rgb",)),
    Mutant("face_mesh", "input not scaled to 0-1", MESH,
           "cv2.multiply(channel, 1 / 255,", "cv2.multiply(channel, 1,",
           (f"{T_MESH}::test_input_is_rgb",)),
    Mutant("face_mesh", "PRelu rewrite: the two scales swapped", "tools/convert_face_mesh.py",
           '(("/relu_scale", 1.0 - slope), ("/slope", slope))',
           '(("/relu_scale", slope), ("/slope", 1.0 - slope))',
           (f"{T_MESH}::test_prelu_rewritten_as_convolutions_is_the_same_function",)),
    Mutant("face_mesh", "z left in crop pixels", MESH,
           "z = points[:, 2] * np.hypot(*to_photo[:, 0])", "z = points[:, 2]",
           (f"{T_MESH}::test_photo_twice_the_size_gives_points_twice_as_far",)),
    Mutant("mesh_pose", "yaw the wrong way", POSE,
           "math.atan2(forward[0], -forward[2])", "math.atan2(-forward[0], -forward[2])",
           (f"{T_MESH_MEASURES}::test_the_mean_face_posed_and_projected_reads_its_pose",
            f"{T_MESH_MEASURES}::test_the_mesh_pose_agrees_with_the_five_point_pose")),
    Mutant("mesh_pose", "pitch the wrong way", POSE,
           "math.atan2(-forward[1], -forward[2])", "math.atan2(forward[1], -forward[2])",
           (f"{T_MESH_MEASURES}::test_the_mean_face_posed_and_projected_reads_its_pose",)),
    Mutant("mesh_pose", "roll the wrong way", POSE,
           "math.atan2(across[1], across[0])", "math.atan2(-across[1], across[0])",
           (f"{T_MESH_MEASURES}::test_a_rolled_photo_reads_its_roll",)),
    Mutant("mesh_pose", "yaw read off the wrong axis", POSE,
           "math.atan2(forward[0], -forward[2])", "math.atan2(forward[1], -forward[2])",
           (f"{T_MESH_MEASURES}::test_a_mirrored_photo_turns_the_yaw_the_other_way",)),
    Mutant("mesh_pose", "yaw bias slopes swapped", POSE,
           "_YAW_SLOPES = (0.935, 1.031)", "_YAW_SLOPES = (1.031, 0.935)",
           (f"{T_MESH_MEASURES}::test_the_bias_correction_brings_one_mesh_towards_the_mirror_average",)),
    Mutant("mesh_pose", "no yaw bias correction", POSE,
           "slope * yaw + _YAW_OFFSET", "yaw",
           (f"{T_MESH_MEASURES}::test_the_bias_correction_brings_one_mesh_towards_the_mirror_average",)),
    Mutant("mesh_pose", "pose from the 5 points despite the mesh", "fiqa_cli/runtime/measures.py",
           "pose = None if mesh is None else mesh_pose(mesh.points, (height, width))",
           "pose = None",
           (f"{T_MESH_MEASURES}::test_the_mesh_pose_agrees_with_the_five_point_pose",)),
    Mutant("mesh_pose", "no mesh for the workers", "fiqa_cli/runtime/pipeline.py",
           "mesh = self._mesh(image, each.face) if each.crop is not None else None",
           "mesh = None",
           (f"{T_MESH_MEASURES}::test_the_workers_pass_each_face_its_mesh",)),
    Mutant("mesh_measures", "eyes: the wider eye", "fiqa_cli/runtime/mesh_measures.py",
           "eyes = min(", "eyes = max(",
           (f"{T_MESH_MEASURES}::test_one_closed_eye_closes_the_eyes",)),
    Mutant("mesh_measures", "lip gap read off the outer lips", "fiqa_cli/runtime/mesh_measures.py",
           "INNER_LIPS = ((81, 178), (13, 14), (311, 402))",
           "INNER_LIPS = ((81, 178), (0, 17), (311, 402))",
           (f"{T_MESH_MEASURES}::test_an_open_mouth_pasted_over_a_closed_one_opens_the_mouth",)),
    Mutant("mesh_measures", "T to the nose tip, not the chin", "fiqa_cli/runtime/mesh_measures.py",
           "CHIN = 152", "CHIN = 1",
           (f"{T_MESH_MEASURES}::test_a_photo_found_with_closed_eyes_or_an_open_mouth_fails_icao",
            f"{T_MESH_MEASURES}::test_a_frontal_booth_closeup_passes_icao_pose_eyes_and_mouth")),
    Mutant("mesh_measures", "mouth score not inverted", "fiqa_cli/runtime/mesh_measures.py",
           "ofiq_score(mouth, a=1, s=-1, x0=0.2, w=0.06)", "ofiq_score(mouth, x0=0.2, w=0.06)",
           (f"{T_MESH_MEASURES}::test_an_open_mouth_pasted_over_a_closed_one_opens_the_mouth",)),
    Mutant("mesh_measures", "a mesh that finds no face still measured",
           "fiqa_cli/runtime/measures.py",
           "if mesh is not None and mesh.presence < MIN_PRESENCE:",
           "if mesh is not None and mesh.presence < 0:",
           (f"{T_MESH_MEASURES}::test_a_mesh_that_finds_no_face_gives_no_mesh_measures",)),
    Mutant("mesh_measures", "no mesh for a given crop", "fiqa_cli/runtime/pipeline.py",
           "mesh = self._mesh(slot.crop, template_face(slot.crop.shape[1]))", "mesh = None",
           (f"{T_MESH_MEASURES}::test_the_workers_mesh_a_given_crop",)),
    Mutant("profiles", "a failing value rounded into its limit", "fiqa_cli/runtime/profiles.py",
           "text = _shown_failing(kind.shown_as, shown, limit)",
           "text = _shown(kind.shown_as, shown)",
           ("tests/test_profiles.py::test_a_failing_value_never_reads_as_within_its_limit",)),
    Mutant("occlusion", "contrast counted as featureless", OCCL,
           "- sums * sums < (FLAT_CONTRAST", "- sums * sums > (FLAT_CONTRAST",
           (f"{T_OCCL}::test_unedited_faces_have_their_eyes_and_mouth_visible",
            f"{T_OCCL}::test_a_flat_occluder_covers_its_region_only")),
    Mutant("occlusion", "local mean not subtracted", OCCL,
           "area * squares - sums * sums <", "area * squares <",
           (f"{T_OCCL}::test_a_flat_occluder_covers_its_region_only",)),
    Mutant("occlusion", "region box without the rounding pixel", OCCL,
           "_REGION_MARGIN = _WINDOW // 2 + 1", "_REGION_MARGIN = _WINDOW // 2",
           (f"{T_OCCL}::test_a_regions_share_is_that_of_the_whole_frame",)),
    Mutant("occlusion", "overlapping contours filled in one call", OCCL,
           "        cv2.fillPoly(mask, [loop - (4 * x1, 4 * y1)], 1, shift=2)",
           "        cv2.fillPoly(mask, [lp - (4 * x1, 4 * y1) for lp in loops], 1, shift=2)",
           (f"{T_OCCL}::test_a_regions_share_is_that_of_the_whole_frame",)),
    Mutant("occlusion", "score not inverted", OCCL,
           "clamped(100 * (1 - share))", "clamped(100 * share)",
           (f"{T_OCCL}::test_unedited_faces_have_their_eyes_and_mouth_visible",
            f"{T_OCCL}::test_icao_says_eyes_covered")),
    Mutant("occlusion", "one eye only", OCCL,
           "regions = ((LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR),",
           "regions = ((LEFT_EYE_CONTOUR,),",
           (f"{T_OCCL}::test_one_covered_eye_is_half_the_eye_openings",)),
    Mutant("occlusion", "no canonical scale", OCCL,
           "scale = CANONICAL_IOD / max(float(np.hypot(dx, dy)), 1e-6)", "scale = 1.0",
           (f"{T_OCCL}::test_photo_three_times_the_size_gives_about_the_same_values",)),
    Mutant("occlusion", "not computed from the pipeline's mesh",
           "fiqa_cli/runtime/mesh_measures.py",
           "occlusion_measures(image, mesh)", "occlusion_measures(image, None)",
           (f"{T_OCCL}::test_fiqa_score_says_eyes_covered",)),
    Mutant("occlusion", "presence ignored", OCCL,
           "mesh.presence < MIN_PRESENCE", "mesh.presence < 0",
           (f"{T_OCCL}::test_not_assessed_without_a_face_to_see",)),
    Mutant("occlusion", "regions outside the photo measured", OCCL,
           "np.any(inside < 0) or ", "",
           (f"{T_OCCL}::test_not_assessed_without_a_face_to_see",)),
    Mutant("sessions", "one session by default on a 2-core CPU", "fiqa_cli/runtime/build.py",
           "return 2 if providers == [CPU] and cpus >= 2 and workers >= 2 else 1", "return 1",
           (f"{T_PIPE}::test_a_cpu_of_two_cores_scores_on_two_sessions_by_default",)),
    Mutant("sessions", "every batch on the first session", "fiqa_cli/runtime/pipeline.py",
           "return list(self._finish(group, session))",
           "return list(self._finish(group, self._model))",
           (f"{T_PIPE}::test_sessions_side_by_side_give_the_rows_of_one_session",)),
    Mutant("sessions", "latest batch's rows written first", "fiqa_cli/runtime/pipeline.py",
           "            while futures:\n                yield from futures.popleft().result()",
           "            while futures:\n                yield from futures.pop().result()",
           (f"{T_PIPE}::test_sessions_side_by_side_give_the_rows_of_one_session",)),
    Mutant("sessions", "bound buffers unlocked", "fiqa_cli/runtime/quality_model.py",
           "        with self._lock:\n            return self._run_bound(batch)",
           "        return self._run_bound(batch)",
           (f"{T_BUFFERS}::test_threads_sharing_the_bound_buffers_each_get_their_own_scores",)),
    Mutant("small faces", "no tiled second pass", "fiqa_cli/runtime/detect.py",
           "if scale < 1.0 and widest * scale < SMALL_FACE_SIDE:", "if False:",
           (f"{T_DETECT}::test_small_faces_in_a_large_photo_are_found",)),
    Mutant("small faces", "tiles for every shrunk photo", "fiqa_cli/runtime/detect.py",
           "if scale < 1.0 and widest * scale < SMALL_FACE_SIDE:", "if scale < 1.0:",
           (f"{T_DETECT}::test_only_shrunk_photos_without_a_large_face_are_searched_again",)),
    Mutant("portability", "Windows lock held taken as free", "fiqa_cli/runtime/output_file.py",
           "    except PermissionError:  # EACCES: another process holds the range\n"
           "        raise _LockHeld from None\n", "",
           (f"{T_PORT}::test_a_second_run_is_refused_the_output_while_the_first_holds_it",)),
    Mutant("api", "API rows not judged", "fiqa_cli/api.py",
           "            row = judged(row, self._profile)", "            pass",
           (f"{T_API}::test_rows_equal_the_commands_rows",)),
    Mutant("progress", "summary drops unreadable rows", "fiqa_cli/commands/progress.py",
           "{self.rows[UNREADABLE]} unreadable", "0 unreadable",
           (f"{T_PROGRESS}::test_summary_counts_every_row_by_status",)),
    Mutant("compression", "IJG scaling above 50 halved", COMP,
           "else 200 - 2 * quality", "else 200 - quality",
           (f"{T_COMP}::test_reencoded_photo_gives_its_quality",)),
    Mutant("compression", "base table not in zigzag order", COMP,
           "_BASE_ZIGZAG = tuple(_BASE_LUMINANCE[index] for index in _zigzag_order())",
           "_BASE_ZIGZAG = _BASE_LUMINANCE",
           (f"{T_COMP}::test_reencoded_photo_gives_its_quality",)),
    Mutant("compression", "first table 0 kept, not the last", COMP,
           "found = tables.get(_LUMINANCE_TABLE, found)",
           "found = found or tables.get(_LUMINANCE_TABLE)",
           (f"{T_COMP}::test_last_table_zero_before_the_scan_counts",)),
    Mutant("compression", "16-bit table read as 8-bit", COMP,
           '">64H" if precision else "64B"', '"64B"',
           (f"{T_COMP}::test_sixteen_bit_table_is_read",)),
    Mutant("compression", "partial table read on", COMP,
           "        if position + 1 + size > end:\n            return None\n", "",
           (f"{T_COMP}::test_malformed_tables_are_not_assessed_quickly",)),
    Mutant("compression", "zero entries accepted", COMP,
           "        if 0 in entries:\n            return None\n", "",
           (f"{T_COMP}::test_malformed_tables_are_not_assessed_quickly",)),
    Mutant("compression", "cut-short header raises", COMP,
           "except (HeaderError, struct.error, IndexError, ValueError):",
           "except (HeaderError, ValueError):",
           (f"{T_COMP}::test_mutated_headers_never_raise",)),
    Mutant("compression", "every WebP lossless", COMP,
           "data[12:16] == _WEBP_LOSSLESS", "True",
           (f"{T_COMP}::test_other_formats",)),
    Mutant("compression", "file quality not passed for crops", "fiqa_cli/runtime/pipeline.py",
           "slot.crop, None, [], slot.crop, mesh=mesh, file_quality=quality",
           "slot.crop, None, [], slot.crop, mesh=mesh",
           (f"{T_COMP}::test_the_pipeline_passes_the_files_quality",)),
    Mutant("compression", "file quality not passed for detected faces",
           "fiqa_cli/runtime/pipeline.py",
           "image, each.face, detected, each.crop, mesh=mesh, file_quality=quality",
           "image, each.face, detected, each.crop, mesh=mesh",
           (f"{T_COMP}::test_a_detected_face_gets_its_files_quality",)),
    Mutant("background", "head counted as background", MEASURES_PY,
           "_FULL_BACKGROUND_MASK = cv2.erode(_NOT_HEAD, _BACKGROUND_EROSION)",
           "_FULL_BACKGROUND_MASK = np.ones_like(_NOT_HEAD)",
           (f"{T_MEASURES}::test_flat_background_is_uniform_a_textured_one_is_not",)),
    Mutant("background", "padding counted as background", MEASURES_PY,
           "mask = cv2.erode(inside.astype(np.uint8) & _NOT_HEAD, _BACKGROUND_EROSION)",
           "mask = _FULL_BACKGROUND_MASK",
           (f"{T_MEASURES}::test_face_filling_the_photo_leaves_no_background_to_judge",)),
    Mutant("background", "one corner in the photo taken for all", MEASURES_PY,
           "if _within(from_x, width).all() and _within(from_y, height).all():",
           "if _within(from_x, width).any() and _within(from_y, height).any():",
           (f"{T_MEASURES}::test_the_background_pixels_from_the_photo_are_those_each_pixel_maps_into_it",)),
    Mutant("background", "rows and columns swapped in the map", MEASURES_PY,
           "to_photo[0, 0] * _REGION_X + (to_photo[0, 1] * _REGION_Y",
           "to_photo[0, 1] * _REGION_X + (to_photo[0, 0] * _REGION_Y",
           (f"{T_MEASURES}::test_the_background_pixels_from_the_photo_are_those_each_pixel_maps_into_it",)),
    Mutant("background", "mapping rises with the gradient", MEASURES_PY,
           "ofiq_score(mean, h=190, a=1, s=-1, x0=10, w=100)",
           "ofiq_score(mean, h=190, a=0, s=1, x0=10, w=100)",
           (f"{T_MEASURES}::test_flat_background_is_uniform_a_textured_one_is_not",)),
    Mutant("luminance variance", "mean absolute deviation", MEASURES_PY,
           "histogram @ np.square(_LEVELS - mean)", "histogram @ np.abs(_LEVELS - mean)",
           (f"{T_MEASURES}::test_lower_contrast_lowers_luminance_variance",)),
    Mutant("luminance variance", "peak moved", MEASURES_PY,
           "math.sin(math.pi * 60 * variance / (60 * variance + 1))",
           "math.sin(math.pi * 50 * variance / (50 * variance + 1))",
           (f"{T_MEASURES}::test_luminance_variance_mapping",)),
)  # fmt: skip


def copy_tree(target: Path) -> None:
    """The working tree's tracked and untracked, not ignored, files; the export and models
    packages linked where `fiqa_cli.export` and `fiqa_cli.models` import them from."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    # setup.cfg maps these packages to export/ and models/; an editable install of the real
    # tree would otherwise serve them to the copy unmutated.
    (target / "fiqa_cli" / "export").symlink_to(target / "export")
    (target / "fiqa_cli" / "models").symlink_to(target / "models")


def failing_tests(tree: Path, tests: tuple[str, ...]) -> tuple[set[str], str]:
    """Run `tests` in `tree`: the node ids that failed or errored, and pytest's output tail."""
    report = tree / "report.xml"
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         f"--junitxml={report}", *tests],
        cwd=tree, env=environment, capture_output=True, text=True,
    )  # fmt: skip
    failed = set()
    if report.is_file():
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                module = case.get("classname", "").replace(".", "/")
                failed.add(f"{module}.py::{case.get('name', '').split('[')[0]}")
        report.unlink()
    return failed, finished.stdout[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated groups (see --list)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    arguments = parser.parse_args()
    mutants = MUTANTS
    if arguments.only:
        groups = {group.strip() for group in arguments.only.split(",")}
        unknown = groups - {mutant.group for mutant in MUTANTS}
        if unknown:  # no mutant means no test named, and pytest would run the whole suite
            parser.error(f"no such group: {', '.join(sorted(unknown))} (see --list)")
        mutants = tuple(mutant for mutant in MUTANTS if mutant.group in groups)
    if arguments.list:
        for mutant in mutants:
            print(f"{mutant.group:14} {mutant.name:38} {mutant.path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="fiqa-mutants-") as temp:
        tree = Path(temp)
        copy_tree(tree)
        needed = tuple(dict.fromkeys(test for mutant in mutants for test in mutant.tests))
        failed, output = failing_tests(tree, needed)
        if failed or "passed" not in output:
            print(f"the named tests must pass unmutated first; failing: {sorted(failed)}")
            print(output)
            return 2
        survivors = []
        for mutant in mutants:
            started = time.monotonic()
            path = tree / mutant.path
            source = path.read_text()
            if source.count(mutant.original) != 1:
                print(f"{mutant.name}: snippet found {source.count(mutant.original)} times in "
                      f"{mutant.path}; update the mutant")  # fmt: skip
                return 2
            path.write_text(source.replace(mutant.original, mutant.replacement))
            try:
                failed, output = failing_tests(tree, mutant.tests)
            finally:
                path.write_text(source)
            killers = failed & set(mutant.tests)
            verdict = "killed" if killers else "SURVIVED"
            print(f"{verdict:8} {mutant.group:14} {mutant.name:38} "
                  f"{time.monotonic() - started:5.0f} s  {', '.join(sorted(killers))}")  # fmt: skip
            if not killers:
                survivors.append(mutant)
                if failed:
                    print(f"         only other tests failed: {sorted(failed)}")
    killed = len(mutants) - len(survivors)
    print(f"\n{killed} of {len(mutants)} mutants killed")
    for mutant in survivors:
        print(f"survivor: {mutant.group}: {mutant.name} ({mutant.path})")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
