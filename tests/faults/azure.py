"""The Azure stand-in's faults (tests/azurestandin.py switches them on by name): the checks
each must fail, asserted by test_azure_standin_suite.py (FAIL, NON-STRICT or ERROR, under
--dicomweb-strict, profile azure-v2)."""

from __future__ import annotations

from proof import STANDIN, register

A, W = "test_azure.py::", "test_walkthrough.py::"
P = "test_properties_stateful.py::"
DELETE_404 = f"{A}test_delete_of_what_is_not_there_is_404"
NOT_THERE = ("unknown study", "unknown series", "unknown instance", "deleted instance")
DELETE_TARGET = f"{W}test_delete_removes_exactly_its_target"
DUPLICATE = f"{A}test_duplicate_store_conflicts_with_reason_45070"
SINGLE_PART_CONFLICT = f"{W}test_single_part_store_of_stored_instance_conflicts"
FEED_DELETES = f"{A}test_changefeed_records_deletes_and_marks_earlier_entries_deleted"
FEED_CREATES = f"{A}test_changefeed_has_a_create_entry_for_each_stored_instance"
FEED_LATEST = f"{A}test_changefeed_latest_is_one_complete_entry"
FEED_METADATA = f"{A}test_changefeed_metadata_only_when_asked"
FEED_PAGING = f"{A}test_changefeed_pages_neither_skip_nor_repeat"
FEED_WINDOW = f"{A}test_changefeed_time_window_is_start_inclusive_end_exclusive"
FEED_RANGE = f"{A}test_changefeed_out_of_range_paging_is_refused_or_served_sanely"
MALFORMED_UID = f"{A}test_delete_with_a_malformed_uid_is_400"
# The checks each fault must catch (FAIL, NON-STRICT or ERROR, under --dicomweb-strict, profile
# azure-v2).
STANDIN_CATCHES: dict[str, set[str]] = {
    "delete-keeps-data": {
        f"{DELETE_404}[deleted instance]",
        f"{A}test_delete_ignores_accept_content_type_and_body",
        f"{A}test_an_instance_deleted_can_be_stored_again",
        FEED_DELETES,  # the study's delete also names the instance "deleted" before it
        *(f"{DELETE_TARGET}[{target}]" for target in ("instance", "series", "study")),
    },
    "changefeed-misses-delete": {FEED_DELETES},
    "changefeed-paging-skips": {FEED_PAGING},
    "duplicate-accepted": {DUPLICATE, SINGLE_PART_CONFLICT},
    "single-part-ignored": {
        f"{A}test_single_part_store_stores_the_instance",
        DUPLICATE,  # a single-part duplicate is "stored" too: 200, not 409
        SINGLE_PART_CONFLICT,
    },
    "changefeed-wrong-uids": {FEED_CREATES},
    "changefeed-latest-stale": {FEED_LATEST},
    "changefeed-metadata-always": {FEED_METADATA},
    # A SHOULD (no document gives the answer): NON-STRICT, caught under --dicomweb-strict.
    "changefeed-range-500": {
        f"{FEED_RANGE}[{param}]" for param in ("limit=0", "limit=max+1", "offset=-1")
    },
    "changefeed-window-end-inclusive": {FEED_WINDOW},
    "changefeed-object-not-array": {
        f"{W}test_changefeed_answers_200",
        FEED_CREATES,
        FEED_DELETES,
        FEED_LATEST,
        FEED_METADATA,
        FEED_PAGING,
        FEED_WINDOW,
    },
    "delete-unknown-204": {
        *(f"{DELETE_404}[{target}]" for target in NOT_THERE),
        # the target deleted, its second DELETE answers 204 where 404 is due
        *(f"{DELETE_TARGET}[{target}]" for target in ("instance", "series", "study")),
    },
    "delete-malformed-uid-404": {
        f"{MALFORMED_UID}[{probe}]" for probe in ("bad character", "65 characters")
    },
    "etag-ignored": {f"{A}test_metadata_etag_answers_304_when_unchanged"},
    # Only a sequence that searches before a delete and again after it shows this one.
    "search-cached-past-delete": {f"{P}test_deletes_stores_and_searches_agree_with_the_model"},
}

for _name, _checks in STANDIN_CATCHES.items():
    register(f"stand-in: {_name}", _checks, test="test_azure_standin_suite.py", where=STANDIN)
