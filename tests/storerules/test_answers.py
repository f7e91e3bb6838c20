from storerules.answers import answer_matches, hash_answer


def test_answers_match_after_normalisation_and_are_not_stored_in_clear():
    stored = hash_answer("  Blue  Cat ")
    assert "blue" not in stored.lower()
    assert answer_matches("bluecat", [stored])
    assert answer_matches("ＢＬＵＥ ＣＡＴ", [stored])  # full-width, as a phone keyboard may type
    assert not answer_matches("blue dog", [stored])


def test_any_of_several_answers_and_garbage_hashes_are_skipped():
    hashes = ["scrypt$broken", hash_answer("42"), hash_answer("四十二")]
    assert answer_matches("四十二", hashes) and answer_matches("42", hashes)
    assert not answer_matches("41", hashes)
