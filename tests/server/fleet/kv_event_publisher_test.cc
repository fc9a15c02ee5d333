#include "server/fleet/kv_event_publisher.h"

#include <msgpack.h>
#include <zmq.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

KvEvent Stored(BlockHash hash, BlockHash parent, std::vector<TokenId> tokens) {
  return KvEvent{.kind = KvEvent::Kind::kStored, .hash = hash, .parent = parent, .tokens = std::move(tokens)};
}
KvEvent Removed(BlockHash hash) {
  return KvEvent{.kind = KvEvent::Kind::kRemoved, .hash = hash, .parent = kNoParentHash, .tokens = {}};
}
KvEvent Cleared() { return KvEvent{.kind = KvEvent::Kind::kCleared, .hash = 0, .parent = kNoParentHash, .tokens = {}}; }

// A decoded msgpack document, freed with it. It keeps the bytes: decoded strings point into them.
class Unpacked {
 public:
  explicit Unpacked(std::string bytes) : bytes_(std::move(bytes)) {
    msgpack_unpacked_init(&unpacked_);
    size_t offset = 0;
    ok_ = msgpack_unpack_next(&unpacked_, bytes_.data(), bytes_.size(), &offset) == MSGPACK_UNPACK_SUCCESS &&
          offset == bytes_.size();
  }
  ~Unpacked() { msgpack_unpacked_destroy(&unpacked_); }
  bool ok() const { return ok_; }
  const msgpack_object& root() const { return unpacked_.data; }

 private:
  const std::string bytes_;
  msgpack_unpacked unpacked_;
  bool ok_ = false;
};

std::string Str(const msgpack_object& o) {
  EXPECT_EQ(o.type, MSGPACK_OBJECT_STR);
  return std::string(o.via.str.ptr, o.via.str.size);
}
const msgpack_object& At(const msgpack_object& array, uint32_t i) {
  EXPECT_EQ(array.type, MSGPACK_OBJECT_ARRAY);
  EXPECT_LT(i, array.via.array.size);
  return array.via.array.ptr[i];
}

// vLLM's EventBatch layout: [ts, [events]], each event an array tagged by its type's name;
// consecutive stored blocks of one chain become one BlockStored, removals one BlockRemoved.
TEST(KvEventPublisherTest, EncodesVllmsEventBatchLayout) {
  const BlockHash a = 0xfffffffffffffff1ull, b = 2, c = 3;
  const std::vector<KvEvent> events = {Cleared(),        Stored(a, kNoParentHash, {1, 2}), Stored(b, a, {3, 4}),
                                       Stored(c, 99, {5, 6}), Removed(a), Removed(b)};
  Unpacked batch(EncodeKvEventBatch(1700000000.5, events, 2, "GPU"));
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch.root().type, MSGPACK_OBJECT_ARRAY);
  ASSERT_EQ(batch.root().via.array.size, 2u);  // no data_parallel_rank
  EXPECT_EQ(At(batch.root(), 0).type, MSGPACK_OBJECT_FLOAT64);
  EXPECT_DOUBLE_EQ(At(batch.root(), 0).via.f64, 1700000000.5);
  const msgpack_object& list = At(batch.root(), 1);
  ASSERT_EQ(list.via.array.size, 4u);

  const msgpack_object& cleared = At(list, 0);
  ASSERT_EQ(cleared.via.array.size, 1u);
  EXPECT_EQ(Str(At(cleared, 0)), "AllBlocksCleared");

  const msgpack_object& chain = At(list, 1);  // a then b: one chain
  ASSERT_EQ(chain.via.array.size, 7u);
  EXPECT_EQ(Str(At(chain, 0)), "BlockStored");
  ASSERT_EQ(At(chain, 1).via.array.size, 2u);
  EXPECT_EQ(At(At(chain, 1), 0).type, MSGPACK_OBJECT_POSITIVE_INTEGER);
  EXPECT_EQ(At(At(chain, 1), 0).via.u64, a);  // the full unsigned 64-bit hash
  EXPECT_EQ(At(At(chain, 1), 1).via.u64, b);
  EXPECT_EQ(At(chain, 2).type, MSGPACK_OBJECT_NIL);  // a chain's first block has no parent
  ASSERT_EQ(At(chain, 3).via.array.size, 4u);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(At(At(chain, 3), i).via.u64, i + 1);
  EXPECT_EQ(At(chain, 4).via.u64, 2u);  // block_size
  EXPECT_EQ(At(chain, 5).type, MSGPACK_OBJECT_NIL);  // lora_id
  EXPECT_EQ(Str(At(chain, 6)), "GPU");

  const msgpack_object& other = At(list, 2);  // c hangs from 99, not from b: its own event
  EXPECT_EQ(At(At(other, 1), 0).via.u64, c);
  EXPECT_EQ(At(other, 2).via.u64, 99u);

  const msgpack_object& removed = At(list, 3);
  ASSERT_EQ(removed.via.array.size, 3u);
  EXPECT_EQ(Str(At(removed, 0)), "BlockRemoved");
  ASSERT_EQ(At(removed, 1).via.array.size, 2u);
  EXPECT_EQ(Str(At(removed, 2)), "GPU");
}

// A block moving to the host KV tier: removed from the GPU, stored on the CPU (vLLM's media);
// runs never mix media.
TEST(KvEventPublisherTest, HostTierEventsNameTheHostMedium) {
  KvEvent to_host = Stored(5, kNoParentHash, {1, 2});
  to_host.medium = KvEvent::Medium::kHost;
  KvEvent host_evicted = Removed(6);
  host_evicted.medium = KvEvent::Medium::kHost;
  const std::vector<KvEvent> events = {Stored(4, kNoParentHash, {7, 8}), to_host, Removed(5), host_evicted};
  Unpacked batch(EncodeKvEventBatch(1.0, events, 2, "GPU", "CPU"));
  ASSERT_TRUE(batch.ok());
  const msgpack_object& list = At(batch.root(), 1);
  ASSERT_EQ(list.via.array.size, 4u);
  EXPECT_EQ(Str(At(At(list, 0), 6)), "GPU");
  EXPECT_EQ(Str(At(At(list, 1), 0)), "BlockStored");
  EXPECT_EQ(Str(At(At(list, 1), 6)), "CPU");
  EXPECT_EQ(Str(At(At(list, 2), 0)), "BlockRemoved");
  EXPECT_EQ(Str(At(At(list, 2), 2)), "GPU");
  EXPECT_EQ(Str(At(At(list, 3), 2)), "CPU");
}

// Through a real ZeroMQ socket: three frames per batch, the topic, the sequence number in
// 8 big-endian bytes from 0, the payload.
TEST(KvEventPublisherTest, SubscribersGetTopicSequenceAndPayload) {
  KvEventPublisherOptions options;
  options.endpoint = "tcp://127.0.0.1:*";
  options.topic = "kv@test@model";
  auto publisher = KvEventPublisher::Start(options);
  ASSERT_TRUE(publisher.ok()) << publisher.status();
  void* context = zmq_ctx_new();
  void* sub = zmq_socket(context, ZMQ_SUB);
  ASSERT_EQ(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "kv@", 3), 0);
  ASSERT_EQ(zmq_connect(sub, (*publisher)->endpoint().c_str()), 0) << (*publisher)->endpoint();
  const int timeout_ms = 100;
  zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
  // A subscription takes a moment to reach the publisher (ZeroMQ drops what is published
  // before): publish until the first batch arrives, then two more.
  auto receive = [&](std::vector<std::string>* frames) {
    frames->clear();
    int more = 1;
    while (more) {
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      if (zmq_msg_recv(&msg, sub, 0) < 0) {
        zmq_msg_close(&msg);
        return false;
      }
      frames->emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
      more = zmq_msg_more(&msg);
      zmq_msg_close(&msg);
    }
    return true;
  };
  std::vector<std::string> frames;
  bool got = false;
  for (int i = 0; i < 100 && !got; ++i) {
    (*publisher)->Publish({Cleared()});
    got = receive(&frames);
  }
  ASSERT_TRUE(got) << "no batch reached the subscriber";
  auto seq_of = [](const std::string& frame) {
    uint64_t seq = 0;
    for (unsigned char c : frame) seq = seq << 8 | c;
    return seq;
  };
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], "kv@test@model");
  ASSERT_EQ(frames[1].size(), 8u);
  const uint64_t first = seq_of(frames[1]);
  (*publisher)->Publish({Stored(7, kNoParentHash, std::vector<TokenId>(16, 1))});
  (*publisher)->Publish({});  // nothing to say: no batch
  (*publisher)->Publish({Removed(7)});
  ASSERT_TRUE(receive(&frames));
  EXPECT_EQ(seq_of(frames[1]), first + 1);
  Unpacked stored(frames[2]);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(Str(At(At(At(stored.root(), 1), 0), 0)), "BlockStored");
  ASSERT_TRUE(receive(&frames));
  EXPECT_EQ(seq_of(frames[1]), first + 2);
  Unpacked removed(frames[2]);
  EXPECT_EQ(Str(At(At(At(removed.root(), 1), 0), 0)), "BlockRemoved");
  zmq_close(sub);
  zmq_ctx_term(context);
  EXPECT_EQ(KvEventPublisher::Start({.endpoint = "udp://nowhere", .topic = "t", .block_size = 16,
                                     .medium = "CPU", .max_queued_batches = 1})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace troupe
