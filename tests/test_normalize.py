"""Text for speech: numbers, abbreviations and lexicons in English and French, sentence ends, encodings."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.normalize import LexiconError, load_lexicon, normalize_for_speech
from pipeline.records import Chapter
from pipeline.text import split_chapter, split_sentences
from tests.checks import run_cli
from tests.fixtures.books import make_text_book

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[1]


def lexicon_file(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "book.lexicon"
    path.write_bytes(text.encode(encoding))
    return path


# English

ENGLISH = [
    # numbers
    ("There were 42 ships.", "There were forty-two ships."),
    ("It weighed 1,234,567 tons.", "It weighed one million two hundred and thirty-four thousand five hundred and sixty-seven tons."),
    ("Pi is about 3.14.", "Pi is about three point one four."),
    ("Agent 007 smiled.", "Agent zero zero seven smiled."),
    ("Half, or 50%, stayed.", "Half, or fifty percent, stayed."),
    ("Version 1.2.3 plays MP3 files in 3D.", "Version 1.2.3 plays MP3 files in 3D."),
    # ordinals
    ("He came 1st, 2nd, 3rd, 21st and 100th.", "He came first, second, third, twenty-first and one hundredth."),
    # years
    ("It was 1999.", "It was nineteen ninety-nine."),
    ("In 1066 and in 2005 they sailed.", "In ten sixty-six and in two thousand and five they sailed."),
    ("Since 1850, 1999 people have lived here.", "Since eighteen fifty, one thousand nine hundred and ninety-nine people have lived here."),
    ("The 1990s were loud; the 1800s were not.", "The nineteen nineties were loud; the eighteen hundreds were not."),
    ("The war (1939–45) and 1914-1918.", "The war (nineteen thirty-nine to forty-five) and nineteen fourteen to nineteen eighteen."),
    # times
    ("We met at 10:30, 10:05, 10:00 and 22:00.", "We met at ten thirty, ten oh five, ten o'clock and twenty-two hundred."),
    # currency
    ("It cost $5, then $1.01.", "It cost five dollars, then one dollar and one cent."),
    ("A pint was £3.50 and a pie 99p.", "A pint was three pounds and fifty pence and a pie 99p."),
    ("Tickets: 5 €, or €12.", "Tickets: five euros, or twelve euros."),
    ("They raised $2.5 million.", "They raised two point five million dollars."),
    ("Change: $0.99.", "Change: ninety-nine cents."),
    # Roman numerals in headings
    ("Chapter IV", "Chapter four"),
    ("CHAPTER XII. The Storm", "CHAPTER twelve. The Storm"),
    ("Part II: The Return", "Part two: The Return"),
    ("Book iii", "Book three"),
    ("I read Chapter IV twice.", "I read Chapter IV twice."),
    ("Chapter IIII", "Chapter IIII"),
    # abbreviations
    ("Mr. Smith met Mrs. Jones and Dr. Watson.", "Mister Smith met Missus Jones and Doctor Watson."),
    ("St. Paul lived on Baker St. near the park.", "Saint Paul lived on Baker Street near the park."),
    ("Take the No. 5 or the No.7 bus.", "Take the number five or the number seven bus."),
    ("He said No. It was snow.", "He said No. It was snow."),
    ("Smith vs. Jones, e.g. today.", "Smith versus Jones, for example today."),
    ("Apples, pears, etc.", "Apples, pears, et cetera."),
    ("Drs. and Mrsa. and Stone. stay.", "Drs. and Mrsa. and Stone. stay."),
    # characters
    ("The ﬁsh ﬂew oﬀ, ﬃ, ﬄ, ﬅ and ﬆ; œuvre stays.", "The fish flew off, ffi, ffl, st and st; œuvre stays."),
    ("in\u00adde\u00adpen\u00addent zero\u200bwidth\u200c\u200d\u2060\ufeffjoin", "independent zerowidthjoin"),
    ("Mr.\u00a0Smith paid\u202f$5.", "Mister Smith paid five dollars."),
]


@pytest.mark.parametrize(("text", "spoken"), ENGLISH)
def test_normalize_english(text, spoken):
    assert normalize_for_speech(text, "en") == spoken


def test_normalize_english_regional_tag():
    assert normalize_for_speech("Dr. Who arrived at 10:30.", "en-GB") == "Doctor Who arrived at ten thirty."


# French

FRENCH = [
    # numbers
    ("Il a 42 ans.", "Il a quarante-deux ans."),
    ("Il y a 3\u202f000 ans, ou 2 500.", "Il y a trois mille ans, ou deux mille cinq cents."),
    ("Pi vaut 3,14 et non 3,05.", "Pi vaut trois virgule quatorze et non trois virgule zéro cinq."),
    ("La moitié, soit 50\u00a0%, reste.", "La moitié, soit cinquante pour cent, reste."),
    ("Il est né en 1999.", "Il est né en mille neuf cent quatre-vingt-dix-neuf."),
    # ordinals
    ("Le 1er janvier, la 1re fois, la 1ère page.", "Le premier janvier, la première fois, la première page."),
    ("Le 2e jour du 21e siècle, la 2nde guerre.", "Le deuxième jour du vingt et unième siècle, la seconde guerre."),
    ("Au XIXe siècle, sous François Ier.", "Au dix-neuvième siècle, sous François premier."),
    # times
    ("À 10:30, 10 h 30, 10h05, 21 h et 1 h.", "À dix heures trente, dix heures trente, dix heures cinq, vingt et une heures et une heure."),
    # currency
    ("Il coûte 5\u00a0€, puis 3,50 €.", "Il coûte cinq euros, puis trois euros et cinquante centimes."),
    ("Une livre : 1 £ ; vingt et une : 21 £.", "Une livre : une livre ; vingt et une : vingt et une livres."),
    ("Un budget de 1\u00a0000\u00a0000 € et $5.", "Un budget de un million d'euros et cinq dollars."),
    # Roman numerals in headings
    ("CHAPITRE IX", "CHAPITRE neuf"),
    ("Chapitre I. Le départ", "Chapitre un. Le départ"),
    ("Livre II", "Livre deux"),
    # abbreviations
    ("M. Dupont et Mme Durand sont venus.", "Monsieur Dupont et Madame Durand sont venus."),
    ("Mlle Claire, Mlles Roux, Mmes Martin et MM. Petit.", "Mademoiselle Claire, Mesdemoiselles Roux, Mesdames Martin et Messieurs Petit."),
    ("Le Dr Martin et le Pr. Blanc.", "Le Docteur Martin et le Professeur Blanc."),
    ("Au n° 5 et au n°12.", "Au numéro cinq et au numéro douze."),
    ("De St-Denis à Ste-Anne, etc.", "De Saint-Denis à Sainte-Anne, et cetera."),
    ("Drôle de Mmeuh.", "Drôle de Mmeuh."),
    # characters
    ("Quoi\u00a0? «\u202fOui\u202f».", "Quoi ? « Oui »."),
]


@pytest.mark.parametrize(("text", "spoken"), FRENCH)
def test_normalize_french(text, spoken):
    assert normalize_for_speech(text, "fr") == spoken


def test_normalize_swiss_french_numbers():
    assert normalize_for_speech("Il a 80 ans.", "fr-CH") == "Il a huitante ans."


def test_normalize_other_language_cleans_characters_only():
    assert normalize_for_speech("Dr. Müller hat 42 Äp\u00adfel\u200b.", "de") == "Dr. Müller hat 42 Äpfel."


def test_normalize_unchanged_text_equal():
    text = "Nothing here needs a change."

    assert normalize_for_speech(text, "en") == text


# Lexicon


def test_lexicon_whole_words_any_case(tmp_path):
    lexicon = load_lexicon(lexicon_file(tmp_path, "Hermione = Her-my-oh-nee\n"))

    spoken = normalize_for_speech("Hermione, HERMIONE and hermione's cat; Hermiones and XHermione stay.", "en", lexicon)

    assert spoken == "Her-my-oh-nee, Her-my-oh-nee and Her-my-oh-nee's cat; Hermiones and XHermione stay."


def test_lexicon_formats_and_comments(tmp_path):
    text = (
        "\ufeff# Names in this book\n"
        "\n"
        "Tolkien\tTol-keen\n"
        "Smaug = Smowg   # the dragon\n"
        "  C# = C sharp\n"
        "New York City = the Big Apple\n"
        "New York = the Empire State\n"
    )
    lexicon = load_lexicon(lexicon_file(tmp_path, text))

    spoken = normalize_for_speech("Tolkien wrote C# in New York City and New York about Smaug.", "en", lexicon)

    assert spoken == "Tol-keen wrote C sharp in the Big Apple and the Empire State about Smowg."


def test_lexicon_overrides_abbreviations_and_numbers(tmp_path):
    lexicon = load_lexicon(lexicon_file(tmp_path, "St. = Street\n1984 = Nineteen Eighty-Four\n"))

    spoken = normalize_for_speech("St. Mary read 1984 in 1999.", "en", lexicon)

    assert spoken == "Street Mary read Nineteen Eighty-Four in nineteen ninety-nine."


def test_lexicon_later_line_wins(tmp_path, caplog):
    path = lexicon_file(tmp_path, "Eowyn = Ay-oh-win\neowyn = Ay-o-win\n")

    with caplog.at_level(logging.WARNING, logger="pipeline.normalize"):
        lexicon = load_lexicon(path)

    assert normalize_for_speech("Eowyn rode.", "en", lexicon) == "Ay-o-win rode."
    assert "line 2 replaces the entry" in caplog.text


def test_lexicon_empty_file_changes_nothing(tmp_path):
    lexicon = load_lexicon(lexicon_file(tmp_path, "# nothing yet\n"))

    assert normalize_for_speech("Plain words.", "en", lexicon) == "Plain words."


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Good = fine\nno separator here\n", "line 2: no tab or '=' between the word and its replacement"),
        ("Good = fine\n\n = orphan\n", "line 3: the word before '=' is empty"),
        ("Word\t\n", "line 1: the replacement for 'Word' is empty"),
    ],
)
def test_lexicon_bad_line_names_file_and_line(tmp_path, text, problem):
    path = lexicon_file(tmp_path, text)

    with pytest.raises(LexiconError) as raised:
        load_lexicon(path)

    assert str(raised.value).startswith(f"{path}: {problem}")


def test_lexicon_not_utf8_rejected(tmp_path):
    path = lexicon_file(tmp_path, "Café = Ka-fay\n", encoding="cp1252")

    with pytest.raises(LexiconError, match="not UTF-8 text") as raised:
        load_lexicon(path)

    assert str(path) in str(raised.value)


def test_lexicon_missing_file_rejected(tmp_path):
    with pytest.raises(LexiconError, match="lexicon file not found"):
        load_lexicon(tmp_path / "nowhere.lexicon")


def test_inspect_json_shows_spoken_text(tmp_path):
    book = make_text_book(tmp_path / "book.txt", [("Chapter 1", ["Mr. Smith paid $5 to Hermione.", "Nothing to change."])])
    lexicon = lexicon_file(tmp_path, "Hermione = Her-my-oh-nee\n")

    completed = run_cli("inspect", str(book), "--json", "--engine", "espeak", "--lexicon", str(lexicon), timeout=120)

    assert completed.returncode == 0, completed.stderr
    sentences = json.loads(completed.stdout)["chapters"][0]["sentences"]
    assert sentences[0]["spoken"] == "Chapter one"
    assert sentences[1]["text"] == "Mr. Smith paid $5 to Hermione."
    assert sentences[1]["spoken"] == "Mister Smith paid five dollars to Her-my-oh-nee."
    assert "spoken" not in sentences[2]


# Sentence ends at abbreviations and no-break spaces


@pytest.mark.parametrize(
    ("paragraph", "language", "sentences"),
    [
        ("Mr. Smith met Dr. Jones. They spoke.", "en", ["Mr. Smith met Dr. Jones.", "They spoke."]),
        ("Smith vs. Jones was heard at No. 5 on St. James Street. It ended.", "en",
         ["Smith vs. Jones was heard at No. 5 on St. James Street.", "It ended."]),
        ("Mr.\u00a0Smith came.\u00a0Then he left.", "en", ["Mr.\u00a0Smith came.", "Then he left."]),
        ("Le Dr. Martin arrive. Fin.", "fr", ["Le Dr. Martin arrive.", "Fin."]),
        ("Mlle. Claire et MM. Dupont rient. Fin.", "fr", ["Mlle. Claire et MM. Dupont rient.", "Fin."]),
        ("M.\u00a0Dupont est venu\u00a0! Il a dit\u202f: «\u202fOui\u202f».", "fr",
         ["M.\u00a0Dupont est venu\u00a0!", "Il a dit\u202f: «\u202fOui\u202f»."]),
        ("Au n°\u00a05 vit Mme\u00a0Roux. Fin.", "fr", ["Au n°\u00a05 vit Mme\u00a0Roux.", "Fin."]),
    ],
)
def test_split_sentences_keeps_titles_together(paragraph, language, sentences):
    assert split_sentences(paragraph, language) == sentences


def test_split_chapter_keeps_printed_text():
    chapter = Chapter(1, "One", ("Le Dr.\u00a0Martin a payé 5\u00a0€. Fin.",))

    sentences = split_chapter(chapter, "fr", 400)

    assert [sentence.text for sentence in sentences] == ["Le Dr.\u00a0Martin a payé 5\u00a0€.", "Fin."]


# Text files decode the same whatever the locale

DECODE_SCRIPT = """
import json, sys
from pipeline.ingest import read_book
print(json.dumps([list(read_book(path).chapters[0].paragraphs) for path in sys.argv[1:]]))
"""
"""Reads each book and prints its first chapter's paragraphs as ASCII-only JSON."""

SAMPLE = "Café « déjà vu », naïve ‘quotes’ — and €5."


@pytest.fixture
def encoded_books(tmp_path) -> list[Path]:
    """The same book in UTF-8, UTF-8 with BOM, UTF-16 with BOM and cp1252."""
    return [
        make_text_book(tmp_path / f"book-{encoding}.txt", [("Chapter 1", [SAMPLE])], encoding=encoding)
        for encoding in ("utf-8", "utf-8-sig", "utf-16", "cp1252")
    ]


def c_locale_environment() -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("LC_", "PYTHON"))}
    environment.update({"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"})
    return environment


def test_text_encodings_decode_same_in_c_locale(encoded_books):
    completed = subprocess.run(
        [sys.executable, "-c", DECODE_SCRIPT, *map(str, encoded_books)],
        capture_output=True, text=True, env=c_locale_environment(), cwd=REPOSITORY, timeout=60, check=False,
    )

    assert completed.returncode == 0, completed.stderr
    for paragraphs in json.loads(completed.stdout):
        assert paragraphs == ["Chapter 1", SAMPLE]


def test_inspect_json_same_text_in_c_locale(encoded_books):
    for book in encoded_books:
        completed = subprocess.run(
            [sys.executable, "-m", "audiobook", "inspect", str(book), "--json", "--engine", "espeak"],
            capture_output=True, env=c_locale_environment(), cwd=REPOSITORY, timeout=120, check=False,
        )

        assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")
        sentences = json.loads(completed.stdout.decode("utf-8"))["chapters"][0]["sentences"]
        assert sentences[1]["text"] == SAMPLE
