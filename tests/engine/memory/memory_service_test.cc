#include "engine/memory/memory_service.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string_view>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/embedding/bert_embedder.h"
#include "engine/memory/emotion.h"
#include "engine/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/testing/minilm.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

const std::string kEmbedderDir = testing::MiniLmDir();

// The writer thread, a real database file and the real embedding model.
class MemoryServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto embedder = BertEmbedder::Load(kEmbedderDir);
    ASSERT_TRUE(embedder.ok()) << embedder.status() << " (run scripts/fetch-embedder.sh)";
    embedder_ = std::move(*embedder).release();
  }
  static void TearDownTestSuite() {
    delete embedder_;
    embedder_ = nullptr;
  }

  void SetUp() override {
    auto store = SqliteStore::Open(dir_.File("troupe.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->PutCharacter("", {.id = "mara", .card_json = "{}", .create_time_ms = 1, .update_time_ms = 1}).ok());
    for (const char* id : {"s1", "s2", "s3"}) {
      SessionRecord s;
      s.id = id;
      s.character_id = "mara";
      s.user_id = std::string(id) == "s1" ? "" : (std::string(id) == "s2" ? "ash" : "bo");
      s.setup_json = "{}";
      s.mood = kNeutralEmotion;
      ASSERT_TRUE(store_->CreateSession("", s).ok());
    }
  }
  void TearDown() override {
    store_.reset();  // closes the database before dir_ goes
  }

  std::unique_ptr<MemoryService> NewService() {
    auto service = std::make_unique<MemoryService>(store_.get(), embedder_, nullptr, MemoryServiceOptions{});
    EXPECT_TRUE(service->Load().ok());
    return service;
  }

  static TurnMemoryInput Turn(const std::string& session, const std::string& user_id, int index,
                              const std::string& user, const std::string& reply, EmotionVector emotion,
                              std::optional<int64_t> story_time = std::nullopt) {
    TurnMemoryInput t;
    t.keys = {.tenant = "", .session_id = session, .character_id = "mara", .user_id = user_id};
    t.turn_index = index;
    t.user_text = user;
    t.reply_text = reply;
    t.user_name = "Ash";
    t.character_name = "Mara";
    t.story_time = story_time;
    t.emotion = emotion;
    return t;
  }

  static RecallRequest Query(const std::string& session, const std::string& user_id, const std::string& text,
                             const std::string& tenant = "") {
    RecallRequest r;
    r.keys = {.tenant = tenant, .session_id = session, .character_id = "mara", .user_id = user_id};
    r.query_text = text;
    r.options.k = 3;
    return r;
  }

  static constexpr EmotionVector kJoyful = {9, 5, 1, 3, 1, 1, 1, 5};
  static constexpr EmotionVector kSad = {1, 2, 3, 1, 9, 1, 2, 1};
  static BertEmbedder* embedder_;
  testing::ScopedTempDir dir_{"memory_test"};  // removed after store_ closes
  std::unique_ptr<SqliteStore> store_;
};
BertEmbedder* MemoryServiceTest::embedder_ = nullptr;

void RememberTurns(MemoryService& service, Store& store, const std::string& session) {
  const std::vector<std::pair<std::string, std::string>> turns = {
      {"Do you like the sea?", "I was born on a fishing boat; the sea is my home."},
      {"What happened to your brother?", "He drowned in the storm of '09. I still dream of it."},
      {"What do you eat on long voyages?", "Salted fish, hard biscuits and too much rum."},
  };
  for (int i = 0; i < static_cast<int>(turns.size()); ++i) {
    TurnRecord t;
    t.session_id = session;
    t.turn_index = i;
    t.user_text = turns[i].first;
    t.reply_text = turns[i].second;
    ASSERT_TRUE(store.AppendTurn("", t).ok());
  }
  (void)service;
}

TEST_F(MemoryServiceTest, RemembersTurnsAndRecallsByMeaning) {
  auto service = NewService();
  ASSERT_TRUE(service->Remember(Turn("s1", "", 0, "Do you like the sea?", "I was born on a fishing boat; the sea is my home.", kJoyful)).ok());
  ASSERT_TRUE(service->Remember(Turn("s1", "", 1, "What happened to your brother?", "He drowned in the storm of '09. I still dream of it.", kSad)).ok());
  ASSERT_TRUE(service->Remember(Turn("s1", "", 2, "What do you eat on long voyages?", "Salted fish, hard biscuits and too much rum.", kJoyful)).ok());
  service->Flush();
  EXPECT_EQ(service->num_memories(), 3);

  RecallRequest brother = Query("s1", "", "Did your brother die in a storm?");
  brother.options.strategy = RetrievalStrategy::kSemantic;
  auto hits = service->Recall(brother);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].text, "Ash: What happened to your brother?\nMara: He drowned in the storm of '09. I still dream of it.");
  EXPECT_EQ((*hits)[0].scope, MemoryScope::kSession);
  RecallRequest food_query = Query("s1", "", "What food do you bring aboard?");
  food_query.options.strategy = RetrievalStrategy::kSemantic;
  auto food = service->Recall(food_query);
  ASSERT_TRUE(food.ok());
  EXPECT_NE((*food)[0].text.find("Salted fish"), std::string::npos);

  // Stored: the same memories come back from the database, and the mood moved towards the turns.
  auto stored = store_->ListSessionMemories("", "s1");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 3u);
  EXPECT_EQ((*stored)[1].emotion, kSad);
  const EmotionVector mood = store_->GetSession("", "s1")->mood;
  EXPECT_GT(mood[0], 1.0f);  // joy rose from the neutral 1
  EXPECT_GT(mood[4], 1.0f);  // and sadness
}

// The turns a prompt still shows are not recalled (turn_planner.h): the skip range leaves out
// exactly this session's memories of those turns, and k memories still come back when there are.
TEST_F(MemoryServiceTest, TurnsStillInTheWindowAreNotRecalled) {
  auto service = NewService();
  const std::vector<std::pair<std::string, std::string>> turns = {
      {"Do you like the sea?", "I was born on a fishing boat; the sea is my home."},
      {"What happened to your brother?", "He drowned in the storm of '09. I still dream of it."},
      {"What do you eat on long voyages?", "Salted fish, hard biscuits and too much rum."},
      {"Where did you learn to sail?", "My mother taught me on the bay, before the war."},
  };
  for (int i = 0; i < static_cast<int>(turns.size()); ++i) {
    ASSERT_TRUE(service->Remember(Turn("s2", "ash", i, turns[i].first, turns[i].second, kJoyful)).ok());
  }
  // Another session of the same user and character: its turn 1 is not in this session's window.
  SessionRecord other;
  other.id = "s4";
  other.character_id = "mara";
  other.user_id = "ash";
  other.setup_json = "{}";
  other.mood = kNeutralEmotion;
  ASSERT_TRUE(store_->CreateSession("", other).ok());
  ASSERT_TRUE(service->Remember(Turn("s4", "ash", 1, "Any family at sea?", "My brother sailed with me once.", kSad)).ok());
  service->Flush();

  RecallRequest all = Query("s2", "ash", "Tell me about your brother and the storm.");
  all.options.strategy = RetrievalStrategy::kSemantic;
  all.options.k = 2;
  auto before = service->Recall(all);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->size(), 2u);
  EXPECT_NE((*before)[0].text.find("drowned"), std::string::npos);

  RecallRequest window = all;
  window.skip_turns_from = 1;  // turns 1..3 of s2 are still in the prompt
  window.skip_turns_to = 4;
  auto after = service->Recall(window);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), 2u) << "k memories remain when enough lie outside the window";
  for (const RecalledUnit& m : *after) {
    EXPECT_EQ(m.text.find("drowned"), std::string::npos) << m.text;
    EXPECT_EQ(m.text.find("Salted fish"), std::string::npos) << m.text;
    EXPECT_EQ(m.text.find("My mother"), std::string::npos) << m.text;
  }
  // What is left: s2's turn 0 and s4's turn 1 (same index, another session: not skipped).
  std::vector<std::string> texts;
  for (const RecalledUnit& m : *after) texts.push_back(m.text);
  EXPECT_TRUE(std::any_of(texts.begin(), texts.end(), [](const std::string& t) { return t.find("My brother sailed") != std::string::npos; }));
  EXPECT_TRUE(std::any_of(texts.begin(), texts.end(), [](const std::string& t) { return t.find("fishing boat") != std::string::npos; }));
}

TEST_F(MemoryServiceTest, EmotionBreaksSemanticTiesUnderCombinedStrategy) {
  auto service = NewService();
  ASSERT_TRUE(service->Remember(Turn("s1", "", 0, "How was the harbour festival?", "The harbour festival was loud and full of music.", kJoyful)).ok());
  ASSERT_TRUE(service->Remember(Turn("s1", "", 1, "How was the harbour funeral?", "The harbour funeral was quiet and full of tears.", kSad)).ok());
  service->Flush();
  RecallRequest q = Query("s1", "", "Tell me about the harbour.");
  q.options.k = 1;
  q.query_emotion = kSad;
  q.options.strategy = RetrievalStrategy::kCombinedAdditive;
  auto sad = service->Recall(q);
  ASSERT_TRUE(sad.ok());
  ASSERT_EQ(sad->size(), 1u);
  EXPECT_NE((*sad)[0].text.find("funeral"), std::string::npos);
  q.query_emotion = kJoyful;
  auto joyful = service->Recall(q);
  ASSERT_TRUE(joyful.ok());
  EXPECT_NE((*joyful)[0].text.find("festival"), std::string::npos);
}

TEST_F(MemoryServiceTest, ScopesNeverLeakAcrossUsersAndTimeFilterHolds) {
  auto service = NewService();
  ASSERT_TRUE(service->Remember(Turn("s2", "ash", 0, "My name is Ash and I fear spiders.", "Noted, Ash: no spiders aboard.", kJoyful, 10)).ok());
  ASSERT_TRUE(service->Remember(Turn("s3", "bo", 0, "My name is Bo and I fear heights.", "Then stay off the mast, Bo.", kJoyful, 10)).ok());
  ASSERT_TRUE(service->Remember(Turn("s2", "ash", 1, "I became captain of my own ship.", "Then we are equals now.", kJoyful, 50)).ok());
  service->Flush();
  auto ash = service->Recall(Query("s2", "ash", "What am I afraid of?"));
  ASSERT_TRUE(ash.ok());
  for (const RecalledUnit& u : *ash) {
    EXPECT_EQ(u.text.find("Bo"), std::string::npos) << u.text;
    EXPECT_EQ(u.scope, MemoryScope::kUserCharacter);
  }
  // Another session of the same user and character sees them too (user x character scope).
  RecallRequest other_session = Query("s9", "ash", "What am I afraid of?");
  auto again = service->Recall(other_session);
  ASSERT_TRUE(again.ok());
  ASSERT_FALSE(again->empty());
  EXPECT_NE((*again)[0].text.find("spiders"), std::string::npos);
  // A session set before story time 50 never sees the later memory.
  RecallRequest early = Query("s2", "ash", "Who is captain of a ship?");
  early.point_in_time = 20;
  auto before = service->Recall(early);
  ASSERT_TRUE(before.ok());
  for (const RecalledUnit& u : *before) EXPECT_EQ(u.text.find("captain of my own ship"), std::string::npos);
}

TEST_F(MemoryServiceTest, ReloadsFromTheStoreAndBackfillsMissingTurns) {
  {
    auto service = NewService();
    ASSERT_TRUE(service->Remember(Turn("s1", "", 0, "Do you like the sea?", "I was born on a fishing boat.", kJoyful)).ok());
    service->Flush();
  }
  // Turns 0..2 are in the store, but only turn 0 has its memory (as after a crash).
  RememberTurns(*NewService(), *store_, "s1");
  auto service = NewService();
  service->WaitForBackfill();
  EXPECT_EQ(service->num_memories(), 3);
  auto stored = store_->ListSessionMemories("", "s1");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 3u);
  EXPECT_EQ((*stored)[1].turn_index, 1);
  EXPECT_EQ((*stored)[2].turn_index, 2);
  auto hits = service->Recall(Query("s1", "", "Your brother drowned, didn't he?"));
  ASSERT_TRUE(hits.ok());
  EXPECT_NE((*hits)[0].text.find("drowned"), std::string::npos);
}

// A rater whose answers wait until the test opens its gate: it holds the writer thread inside a
// write for as long as the test needs (the stand-in for a slow rating by the engine).
class GatedRater : public MemoryRater {
 public:
  void Open() { open_.Notify(); }
  // Blocks until the writer is inside a rating.
  void WaitUntilEntered() { entered_.WaitForNotification(); }
  absl::StatusOr<EmotionVector> RateEmotion(std::string_view) override {
    Enter();
    return kNeutralEmotion;
  }
  absl::StatusOr<float> RateImportance(std::string_view) override {
    Enter();
    return 5.0f;
  }

 private:
  void Enter() {
    if (!entered_.HasBeenNotified()) entered_.Notify();  // only the writer thread calls it
    open_.WaitForNotification();
  }
  absl::Notification entered_;
  absl::Notification open_;
};

// The real embedder behind a gate: the first Embed (the writer's, in the tests that use it)
// waits until Open, so a test knows a write is in progress.
class GatedEmbedder : public TextEmbedder {
 public:
  explicit GatedEmbedder(const TextEmbedder* inner) : inner_(inner) {}
  void Open() { open_.Notify(); }
  void WaitUntilEntered() { entered_.WaitForNotification(); }
  int dim() const override { return inner_->dim(); }
  absl::StatusOr<std::vector<float>> Embed(std::string_view text) const override {
    if (!entered_.HasBeenNotified()) entered_.Notify();  // only the writer thread calls it
    open_.WaitForNotification();
    return inner_->Embed(text);
  }

 private:
  const TextEmbedder* inner_;
  mutable absl::Notification entered_;
  absl::Notification open_;
};

// Appends `n` turns (from turn_index `first`) to a session in the store, without memories.
void StoreTurns(Store& store, const std::string& session, int first, int n) {
  for (int i = first; i < first + n; ++i) {
    TurnRecord t;
    t.session_id = session;
    t.turn_index = i;
    t.user_text = "Question " + std::to_string(i) + "?";
    t.reply_text = "Answer " + std::to_string(i) + ".";
    ASSERT_TRUE(store.AppendTurn("", t).ok());
  }
}

// The turn indexes of a session's stored memories, sorted.
std::vector<int> MemoryTurns(Store& store, const std::string& session) {
  auto stored = store.ListSessionMemories("", session);
  EXPECT_TRUE(stored.ok()) << stored.status();
  std::vector<int> out;
  if (stored.ok()) {
    for (const MemoryRecord& m : *stored) out.push_back(m.turn_index);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A turn's memory is stored and recallable at once, with the session's mood as provisional
// emotion and the default importance, while its rating waits (here: at a gate, as behind a
// busy engine); the rating then replaces both in the store and the index, and moves the mood.
// A start after a shutdown that left ratings pending rates them.
TEST_F(MemoryServiceTest, AMemoryIsRecallableBeforeItsRatingArrives) {
  const EmotionVector mood = {3, 6, 2, 2, 2, 2, 2, 4};
  ASSERT_TRUE(store_->UpdateSessionMood("", "s1", mood).ok());
  {
    GatedRater rater;
    MemoryService service(store_.get(), embedder_, &rater, MemoryServiceOptions{});
    TurnMemoryInput turn = Turn("s1", "", 0, "Do you like the sea?", "The sea is my home.", kJoyful);
    turn.emotion.reset();  // to be rated
    ASSERT_TRUE(service.Remember(turn).ok());
    rater.WaitUntilEntered();  // the rating is being made, and held
    // Recall waits for the session's write, not for the rating.
    absl::StatusOr<std::vector<RecalledUnit>> hits = service.Recall(Query("s1", "", "the sea"));
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_NE((*hits)[0].text.find("The sea is my home."), std::string::npos);
    auto stored = store_->ListSessionMemories("", "s1");
    ASSERT_TRUE(stored.ok());
    ASSERT_EQ(stored->size(), 1u);
    EXPECT_FALSE((*stored)[0].rated);
    EXPECT_EQ((*stored)[0].emotion, mood);
    EXPECT_EQ(service.num_pending_ratings(), 1);
    EXPECT_GT(service.oldest_pending_rating_age(), absl::ZeroDuration());
    EXPECT_FALSE(service.Flush(absl::Milliseconds(20)));  // Flush waits for ratings too
    rater.Open();
    EXPECT_TRUE(service.Flush(absl::Seconds(60)));
    EXPECT_EQ(service.num_pending_ratings(), 0);
    EXPECT_EQ(service.oldest_pending_rating_age(), absl::ZeroDuration());
    stored = store_->ListSessionMemories("", "s1");
    ASSERT_TRUE(stored.ok());
    EXPECT_TRUE((*stored)[0].rated);
    EXPECT_EQ((*stored)[0].emotion, kNeutralEmotion);  // GatedRater's rating
    auto session = store_->GetSession("", "s1");
    ASSERT_TRUE(session.ok());
    EXPECT_EQ(session->mood, UpdateMood(mood, kNeutralEmotion, MemoryServiceOptions{}.mood_beta));
  }
  // A memory a crash left provisional is rated by the next start.
  MemoryRecord provisional;
  provisional.scope = MemoryScope::kSession;
  provisional.character_id = "mara";
  provisional.session_id = "s2";
  provisional.turn_index = 0;
  provisional.text = "Ash: Hello\nMara: Hi.";
  provisional.embedding = *embedder_->Embed(provisional.text);
  provisional.emotion = kJoyful;
  provisional.rated = false;
  ASSERT_TRUE(store_->AddMemory("", provisional).ok());
  GatedRater rater;
  rater.Open();
  MemoryService restarted(store_.get(), embedder_, &rater, MemoryServiceOptions{});
  ASSERT_TRUE(restarted.Load().ok());
  restarted.WaitForBackfill();
  restarted.Flush();
  auto s2 = store_->ListSessionMemories("", "s2");
  ASSERT_TRUE(s2.ok());
  ASSERT_EQ(s2->size(), 1u);
  EXPECT_TRUE((*s2)[0].rated);
  EXPECT_EQ((*s2)[0].emotion, kNeutralEmotion);
}

// A shutdown whose grace runs out drops the queued writes (the one in progress finishes); their
// turns are in the store, so the next start's backfill writes their memories.
TEST_F(MemoryServiceTest, DroppedWritesAreBackfilledAtTheNextStart) {
  StoreTurns(*store_, "s1", 0, 4);
  {
    GatedEmbedder gate(embedder_);
    MemoryService service(store_.get(), &gate, nullptr, MemoryServiceOptions{});
    for (int i = 0; i < 4; ++i) {
      const std::string n = std::to_string(i);
      ASSERT_TRUE(service.Remember(Turn("s1", "", i, "Question " + n + "?", "Answer " + n + ".", kJoyful)).ok());
    }
    gate.WaitUntilEntered();  // the writer holds turn 0
    EXPECT_FALSE(service.Flush(absl::Milliseconds(20)));
    EXPECT_EQ(service.DropQueued(), 3);
    EXPECT_EQ(service.num_pending_writes(), 1);
    gate.Open();
    EXPECT_TRUE(service.Flush(absl::Seconds(60)));
    EXPECT_EQ(service.num_pending_writes(), 0);
  }
  EXPECT_EQ(MemoryTurns(*store_, "s1"), (std::vector<int>{0}));
  MemoryService restarted(store_.get(), embedder_, nullptr, MemoryServiceOptions{});
  ASSERT_TRUE(restarted.Load().ok());
  restarted.WaitForBackfill();
  EXPECT_EQ(MemoryTurns(*store_, "s1"), (std::vector<int>{0, 1, 2, 3}));
}

// After a crash that left more turns without memories than the write queue holds, Load returns
// while the backfill is still running (the writer is held inside its first write), the backfill
// does not take the clients' queue room, and in the end every turn has exactly one memory.
TEST_F(MemoryServiceTest, BackfillRunsInTheBackgroundAndLeavesClientsTheirQueue) {
  StoreTurns(*store_, "s1", 0, 3);
  StoreTurns(*store_, "s2", 0, 7);
  GatedEmbedder gate(embedder_);
  MemoryService service(store_.get(), &gate, nullptr,
                        MemoryServiceOptions{.max_queue = 2, .backfill_batch_turns = 2});
  ASSERT_TRUE(service.Load().ok());
  TurnMemoryInput client = Turn("s3", "bo", 0, "Hi", "Hello", kJoyful);
  StoreTurns(*store_, "s3", 0, 1);  // committed by the client's turn after the start
  EXPECT_TRUE(service.Remember(client).ok());
  EXPECT_LT(service.num_memories(), 11);  // the writer is still held by the gate
  gate.Open();
  service.WaitForBackfill();
  service.Flush();
  EXPECT_EQ(service.num_memories(), 11);
  EXPECT_EQ(MemoryTurns(*store_, "s1"), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(MemoryTurns(*store_, "s2"), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(MemoryTurns(*store_, "s3"), (std::vector<int>{0}));
  // Clients still meet their cap.
  MemoryService capped(store_.get(), embedder_, nullptr, MemoryServiceOptions{.max_queue = 0});
  EXPECT_EQ(capped.Remember(Turn("s1", "", 3, "Hi", "Hello", kJoyful)).code(),
            absl::StatusCode::kResourceExhausted);
}

// A turn committed after the start is the client's to remember (with its names and emotion),
// even when the backfill reaches its session first; and a second start finds nothing to do.
TEST_F(MemoryServiceTest, BackfillLeavesTurnsOfThisRunToTheirClients) {
  StoreTurns(*store_, "s1", 0, 2);
  {
    MemoryService service(store_.get(), embedder_, nullptr, MemoryServiceOptions{.backfill_batch_turns = 1});
    ASSERT_TRUE(service.Load().ok());
    TurnRecord late;
    late.session_id = "s1";
    late.turn_index = 2;
    late.user_text = "Do you like the sea?";
    late.reply_text = "I was born on a fishing boat.";
    late.time_ms = absl::ToUnixMillis(absl::Now()) + 1;
    ASSERT_TRUE(store_->AppendTurn("", late).ok());
    ASSERT_TRUE(service.Remember(Turn("s1", "", 2, late.user_text, late.reply_text, kJoyful)).ok());
    service.WaitForBackfill();
    service.Flush();
    EXPECT_EQ(service.num_memories(), 3);
  }
  EXPECT_EQ(MemoryTurns(*store_, "s1"), (std::vector<int>{0, 1, 2}));
  auto stored = store_->ListSessionMemories("", "s1");
  ASSERT_TRUE(stored.ok());
  for (const MemoryRecord& m : *stored) {
    if (m.turn_index == 2) EXPECT_EQ(m.text, "Ash: Do you like the sea?\nMara: I was born on a fishing boat.");
  }
  MemoryService restarted(store_.get(), embedder_, nullptr, MemoryServiceOptions{});
  ASSERT_TRUE(restarted.Load().ok());
  restarted.WaitForBackfill();
  EXPECT_EQ(restarted.num_memories(), 3);
  EXPECT_EQ(MemoryTurns(*store_, "s1"), (std::vector<int>{0, 1, 2}));
}

TEST_F(MemoryServiceTest, CharacterExperiencesAreSharedAndReplaced) {
  auto service = NewService();
  ASSERT_TRUE(service->SetCharacterExperiences(
                         "", "mara", {{.text = "Mara lost her first ship in the Narrows.", .story_time = 5,
                                   .emotion = kSad},
                                  {.text = "Mara won the regatta of Vell.", .story_time = 7, .emotion = kJoyful}})
                  .ok());
  auto hits = service->Recall(Query("s3", "bo", "Did you ever lose a ship?"));
  ASSERT_TRUE(hits.ok());
  ASSERT_FALSE(hits->empty());
  EXPECT_EQ((*hits)[0].scope, MemoryScope::kCharacter);
  EXPECT_NE((*hits)[0].text.find("Narrows"), std::string::npos);
  ASSERT_TRUE(service->SetCharacterExperiences("", "mara", {{.text = "Mara never sailed.", .story_time = std::nullopt,
                                                          .emotion = kSad}})
                  .ok());
  auto replaced = service->Recall(Query("s3", "bo", "Did you ever lose a ship?"));
  ASSERT_TRUE(replaced.ok());
  ASSERT_EQ(replaced->size(), 1u);
  EXPECT_EQ((*replaced)[0].text, "Mara never sailed.");
  EXPECT_EQ(store_->ListCharacterMemories("", "mara")->size(), 1u);
}

// Scope keys start with the tenant: a recall for another tenant naming the same user, session
// and character ids finds none of this tenant's memories, of any scope, before or after a
// reload from the store.
TEST_F(MemoryServiceTest, AnotherTenantRecallsNothingWithTheSameIds) {
  {
    auto service = NewService();
    ASSERT_TRUE(service->Remember(Turn("s2", "ash", 0, "My sister is called Wren.", "A fine name.", kJoyful)).ok());
    ASSERT_TRUE(service->Remember(Turn("s1", "", 0, "I hid the key under the mat.", "Noted.", kJoyful)).ok());
    ASSERT_TRUE(service->SetCharacterExperiences("", "mara", {{.text = "Mara lost her first ship.", .story_time = 5,
                                                               .emotion = kSad}})
                    .ok());
    service->Flush();
  }
  auto service = NewService();  // indexes rebuilt from the store
  ASSERT_EQ(service->num_memories(), 3);
  for (const auto& [session, user] : {std::pair<std::string, std::string>{"s2", "ash"}, {"s1", ""}}) {
    auto theirs = service->Recall(Query(session, user, "What is my sister called? Where is the key? A ship?", "other"));
    ASSERT_TRUE(theirs.ok());
    EXPECT_TRUE(theirs->empty()) << (*theirs)[0].text;
  }
  auto mine = service->Recall(Query("s2", "ash", "What is my sister called?"));
  ASSERT_TRUE(mine.ok());
  ASSERT_FALSE(mine->empty());
  EXPECT_NE((*mine)[0].text.find("Wren"), std::string::npos);
}

}  // namespace
}  // namespace troupe
