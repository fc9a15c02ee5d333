#include "server/fleet/kv_event_publisher.h"

#include <msgpack.h>
#include <zmq.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace troupe {
namespace {

void PackString(msgpack_packer* pk, std::string_view s) {
  msgpack_pack_str(pk, s.size());
  msgpack_pack_str_body(pk, s.data(), s.size());
}

// One BlockStored for events[begin, end), a chain of kStored events.
void PackStored(msgpack_packer* pk, const std::vector<KvEvent>& events, size_t begin, size_t end, int block_size,
                std::string_view medium) {
  msgpack_pack_array(pk, 7);
  PackString(pk, "BlockStored");
  msgpack_pack_array(pk, end - begin);
  for (size_t i = begin; i < end; ++i) msgpack_pack_uint64(pk, events[i].hash);
  if (events[begin].parent == kNoParentHash) {
    msgpack_pack_nil(pk);
  } else {
    msgpack_pack_uint64(pk, events[begin].parent);
  }
  size_t num_tokens = 0;
  for (size_t i = begin; i < end; ++i) num_tokens += events[i].tokens.size();
  msgpack_pack_array(pk, num_tokens);
  for (size_t i = begin; i < end; ++i) {
    for (TokenId t : events[i].tokens) msgpack_pack_int64(pk, t);
  }
  msgpack_pack_int64(pk, block_size);
  msgpack_pack_nil(pk);  // lora_id
  PackString(pk, medium);
}

}  // namespace

std::string EncodeKvEventBatch(double ts, const std::vector<KvEvent>& events, int block_size,
                               std::string_view device_medium, std::string_view host_medium) {
  // Runs of events that become one wire event each.
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < events.size();) {
    size_t j = i + 1;
    if (events[i].kind != KvEvent::Kind::kCleared) {
      while (j < events.size() && events[j].kind == events[i].kind && events[j].medium == events[i].medium &&
             (events[i].kind == KvEvent::Kind::kRemoved || events[j].parent == events[j - 1].hash)) {
        ++j;
      }
    }
    runs.emplace_back(i, j);
    i = j;
  }
  msgpack_sbuffer buffer;
  msgpack_sbuffer_init(&buffer);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_double(&pk, ts);
  msgpack_pack_array(&pk, runs.size());
  for (const auto& [begin, end] : runs) {
    const std::string_view medium = events[begin].medium == KvEvent::Medium::kHost ? host_medium : device_medium;
    switch (events[begin].kind) {
      case KvEvent::Kind::kStored:
        PackStored(&pk, events, begin, end, block_size, medium);
        break;
      case KvEvent::Kind::kRemoved:
        msgpack_pack_array(&pk, 3);
        PackString(&pk, "BlockRemoved");
        msgpack_pack_array(&pk, end - begin);
        for (size_t i = begin; i < end; ++i) msgpack_pack_uint64(&pk, events[i].hash);
        PackString(&pk, medium);
        break;
      case KvEvent::Kind::kCleared:
        msgpack_pack_array(&pk, 1);
        PackString(&pk, "AllBlocksCleared");
        break;
    }
  }
  std::string out(buffer.data, buffer.size);
  msgpack_sbuffer_destroy(&buffer);
  return out;
}

absl::StatusOr<std::unique_ptr<KvEventPublisher>> KvEventPublisher::Start(const KvEventPublisherOptions& options) {
  void* context = zmq_ctx_new();
  if (context == nullptr) return absl::ResourceExhaustedError(absl::StrCat("ZeroMQ: ", zmq_strerror(zmq_errno())));
  void* socket = zmq_socket(context, ZMQ_PUB);
  const int linger_ms = 1000;
  const int high_water_mark = 100000;  // messages held per subscriber before ZeroMQ drops
  if (socket == nullptr || zmq_setsockopt(socket, ZMQ_LINGER, &linger_ms, sizeof(linger_ms)) != 0 ||
      zmq_setsockopt(socket, ZMQ_SNDHWM, &high_water_mark, sizeof(high_water_mark)) != 0 ||
      zmq_bind(socket, options.endpoint.c_str()) != 0) {
    const std::string why = zmq_strerror(zmq_errno());
    if (socket != nullptr) zmq_close(socket);
    zmq_ctx_term(context);
    return absl::InvalidArgumentError(absl::StrCat("cannot publish KV-cache events at --kv-events-endpoint '",
                                                   options.endpoint, "' (want tcp://HOST:PORT): ", why));
  }
  return std::unique_ptr<KvEventPublisher>(new KvEventPublisher(options, context, socket));
}

KvEventPublisher::KvEventPublisher(const KvEventPublisherOptions& options, void* context, void* socket)
    : options_(options), context_(context), socket_(socket) {
  char bound[256] = {};
  size_t size = sizeof(bound);
  endpoint_ = zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, bound, &size) == 0 ? bound : options_.endpoint;
  sender_ = std::thread([this] { SendLoop(); });
}

KvEventPublisher::~KvEventPublisher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  sender_.join();
  zmq_close(socket_);
  zmq_ctx_term(context_);
}

void KvEventPublisher::Publish(std::vector<KvEvent> events) {
  if (events.empty()) return;
  const double ts = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(queue_.size()) >= std::max(1, options_.max_queued_batches)) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(Batch{.seq = next_seq_++, .ts = ts, .events = std::move(events)});
}

int64_t KvEventPublisher::num_sent() const {
  absl::MutexLock lock(&mu_);
  return sent_;
}

int64_t KvEventPublisher::num_dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void KvEventPublisher::SendLoop() {
  for (;;) {
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](KvEventPublisher* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->stopping_ || !p->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping, and everything queued sent
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::string payload = EncodeKvEventBatch(batch.ts, batch.events, options_.block_size, options_.medium,
                                                   options_.host_medium);
    unsigned char seq[8];
    for (int i = 0; i < 8; ++i) seq[i] = static_cast<unsigned char>(batch.seq >> (8 * (7 - i)));
    const bool sent = zmq_send(socket_, options_.topic.data(), options_.topic.size(), ZMQ_SNDMORE) >= 0 &&
                      zmq_send(socket_, seq, sizeof(seq), ZMQ_SNDMORE) >= 0 &&
                      zmq_send(socket_, payload.data(), payload.size(), 0) >= 0;
    if (!sent) {
      TROUPE_LOG_WARNING("KV-cache event batch %llu not sent: %s", static_cast<unsigned long long>(batch.seq),
                         zmq_strerror(zmq_errno()));
    }
    absl::MutexLock lock(&mu_);
    if (sent) ++sent_;
  }
}

}  // namespace troupe
