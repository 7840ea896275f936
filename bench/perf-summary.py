# Groups `perf script -F comm,tid,period,event,ip,sym --inline` output of a barrage run by thread and hot spot.
# Usage: perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -o p.data target/release/barrage run LT.yaml
#        perf script -i p.data --inline -F comm,tid,period,event,ip,sym > p.txt && python3 bench/perf-summary.py p.txt
import re, sys, collections
# Each sample: its thread, then the FIRST category (in priority order) that any frame of its callchain matches.
CATS = {
 "sender": [
  ("CString::new(topic) per record in rust-rdkafka BaseProducer::send (malloc+strlen+free)", r"CString>::new|spec_new_impl|CString as core::ops::drop|drop_in_place<alloc::ffi::c_str::CString"),
  ("Box<SendMeta> per record", r"exchange_malloc|Box<barrage_agent::kafka::producer::SendMeta"),
  ("Recorder::record_send (lag histogram, counters)", r"Recorder::record_send"),
  ("Schedule (Profile::due_ns, next_due: f64/u128 math)", r"barrage_agent::schedule::"),
  ("yield_now spinning (waiting for origin during START_LEAD; gaps < 60 µs)", r"yield_now|sched_yield"),
  ("thread::sleep (in-flight bound / QueueFull)", r"thread::sleep|nanosleep"),
  ("in_flight_count (rd_kafka_outq_len)", r"rd_kafka_outq_len"),
  ("producev: rd_kafka_msg_new0 alloc + payload copy + timestamp", r"rd_kafka_msg_new0|rd_kafka_msg_new00"),
  ("producev: topic handle lookup by name (rd_kafka_topic_new0/find, rwlock)", r"rd_kafka_topic_new0|rd_kafka_topic_find|rd_kafka_topic_destroy|rd_kafka_topic_keep"),
  ("producev: partitioner (sticky) + toppar enqueue (mutex, wakeup)", r"rd_kafka_msg_partitioner|rd_kafka_toppar_enq_msg|rd_kafka_msg_sticky|rd_kafka_toppar_get|rd_kafka_q_yield|rd_kafka_q_io_event"),
  ("producev: other", r"rd_kafka_producev"),
  ("clock reads in send_loop (Clock::now_ns)", r"now_ns|Instant>::now"),
  ("PayloadPool / KeyGen", r"PayloadPool|KeyGen"),
  ("send_loop other", r"send_loop"),
 ],
 "poller": [
  ("Recorder::record_ack (3 histograms + per-partition, under a mutex)", r"Recorder::record_ack"),
  ("DeliveryRecorder::delivery other (clock read, Box<SendMeta> free)", r"DeliveryRecorder as rdkafka::producer::ProducerContext>::delivery"),
  ("rd_kafka_msg_destroy / free", r"rd_kafka_msg_destroy|_int_free|cfree"),
  ("rdkafka poll: event/message iteration (rd_kafka_event_message_next, msgq_deq)", r"rd_kafka_event|rd_kafka_msgq_deq|rd_kafka_message_get"),
  ("rdkafka poll: queue wait/wakeups", r"rd_kafka_q_|cnd_timedwait|futex"),
  ("rdkafka BaseProducer::poll other", r"BaseProducer"),
 ],
 "broker": [
  ("build ProduceRequest (msgset writer: memcpy, crc32c)", r"rd_kafka_msgset_|rd_kafka_ProduceRequest|rd_crc32c"),
  ("handle ProduceResponse (set msg status/offsets, DR enqueue)", r"rd_kafka_handle_Produce|rd_kafka_msgbatch_handle|rd_kafka_dr_|rd_kafka_msgq_set_metadata|rd_kafka_buf_callback|rd_kafka_msgset_reader"),
  ("socket send/recv", r"rd_kafka_transport_socket_send|rd_kafka_transport_socket_recv|sendmsg|recvmsg|rd_kafka_recv|rd_kafka_send"),
  ("poll() syscalls and wakeups (linger/queue wakeups)", r"rd_kafka_transport_poll|__poll|do_sys_poll|rd_kafka_q_pop|cnd_timedwait|rd_kafka_broker_ops_serve|rd_kafka_transport_io_event"),
  ("toppar serve (move msgs to xmit queue, linger checks)", r"rd_kafka_toppar_producer_serve|rd_kafka_broker_produce_toppars|rd_kafka_msgq_"),
  ("rd_clock / timers", r"rd_clock|rd_kafka_timers|clock_gettime"),
  ("other broker thread", r"."),
 ],
}
def thread(comm):
    if comm.startswith("rdk:broker") and comm != "rdk:broker-1": return "broker"
    if comm.startswith("barrage-sender"): return "sender"
    if comm.startswith("producer pollin"): return "poller"
    return "other"
NAMES = {"broker": "librdkafka broker thread (rdk:broker1)", "sender": "barrage-sender thread (send_loop)",
         "poller": "rdkafka ThreadedProducer poll thread (delivery callbacks)", "other": "other threads (tokio, main, admin, start-up)"}
tot = collections.Counter(); cat = collections.Counter()
def flush(comm, frames):
    if comm is None: return
    t = thread(comm); tot[t] += 1; tot["ALL"] += 1
    name = "other"
    for label, rx in CATS.get(t, []):
        r = re.compile(rx)
        if any(r.search(f) for f in frames):
            name = label; break
    cat[(t, name)] += 1
comm=None; frames=[]
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        flush(comm, frames); comm=None; frames=[]; continue
    if not line[0].isspace():
        comm = re.split(r"\s+\d+\s+", line, 1)[0].strip(); frames=[]
    else:
        parts = line.strip().split(None, 1)
        frames.append(parts[1] if len(parts) > 1 else parts[0])
flush(comm, frames)
N = tot["ALL"]
print(f"{N} samples (cpu-clock), % of all CPU samples of the barrage process")
for t, n in tot.most_common():
    if t == "ALL": continue
    print(f"{100*n/N:5.1f}%  {NAMES[t]}")
    for (tt, name), c in sorted(cat.items(), key=lambda x: -x[1]):
        if tt == t and 100*c/N >= 0.25:
            print(f"        {100*c/N:5.1f}%  {name}")
