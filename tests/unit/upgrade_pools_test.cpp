// Version 3 of the hand-over record: USR2 carries every pool across the exec (DESIGN.md §7a).
#include "supervisor_fixture.hpp"

#include <herd/manager/upgrade.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace herd;
using namespace herd::test;

namespace {

using Sockets = std::vector<std::tuple<int, std::string, ListenerFamily>>;

Sockets sockets(const std::vector<Listener>& listeners)
{
    Sockets out;
    for (const auto& l : listeners) out.emplace_back(l.fd, l.address, l.family);
    return out;
}

WorkerRecord worker(int pid, int slot, unsigned generation)
{
    WorkerRecord w;
    w.pid = pid;
    w.slot = slot;
    w.generation = generation;
    w.spawned_at = t0;
    w.ready_at = t0 + 1s;
    w.last_heartbeat = t0 + 4s;
    w.beating = true;
    return w;
}

// cache (running, one worker), web (a restart rolling, held slots, a plan half run), jobs (failed, stopping)
Handover three_pools()
{
    Handover h;
    HandoverPool cache;
    cache.name = "cache";
    cache.state.target = 1;
    cache.state.ever_ready = true;
    cache.state.workers = {worker(200, 0, 1)};
    cache.wanted = 1;
    cache.listeners = {Listener{3, "unix:/run/app/cache.sock", ListenerFamily::unix_socket}};

    HandoverPool web;
    web.name = "web";
    web.state.generation = 5;
    web.state.last_generation = 6;
    web.state.target = 4;
    web.state.seed = 77;
    web.state.ever_ready = true;
    web.state.failures = {t0 + 2s, t0 + 3s};
    web.state.exits = {{"crashed", 2}};
    web.state.held = {{2, t0 + 8s}, {3, TimePoint::max()}};
    WorkerRecord leaving = worker(301, 1, 4);
    leaving.reason = Reason::restart;   // retiring for its pool's restart
    leaving.quit_at = t0 + 3s;
    web.state.workers = {worker(300, 0, 5), leaving};
    web.stage = PoolStage::running;
    web.reported = PoolStage::running;
    web.wanted = 4;
    web.step = 1;
    web.runs = 2;
    web.last_restart = t0 + 3s;
    web.restart_pending = true;
    web.listeners = {Listener{4, "127.0.0.1:8080", ListenerFamily::ipv4}, Listener{5, "[::1]:8080", ListenerFamily::ipv6}};

    HandoverPool jobs;
    jobs.name = "jobs";
    jobs.state.generation = 2;
    jobs.state.last_generation = 2;
    jobs.state.target = 1;
    jobs.state.phase = Phase::stopping_graceful;
    WorkerRecord draining = worker(400, 0, 2);
    draining.reason = Reason::shutdown;
    draining.quit_at = t0 + 5s;
    jobs.state.workers = {draining};
    jobs.stage = PoolStage::failed;
    jobs.reported = PoolStage::failed;
    jobs.wanted = 1;
    jobs.why = "worker 401 crashed (exit code 1) after its plan ran 3 times";

    h.pools = {cache, web, jobs};
    h.failed = "jobs";
    h.channels = {{200, 7}, {300, 8}, {301, 9}, {400, 10}};
    h.outputs = {{400, 11}};
    h.binary = "/usr/bin/herd";
    h.started = t0 - 1h;
    return h;
}

std::string error_of(const std::string& text)
{
    try {
        decode_handover(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

std::string encode_error(const Handover& h)
{
    try {
        encode(h);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

// What the release before several pools wrote for one pool (version 2), byte for byte.
const std::string v2_record = R"(herd-handover 2
generation 4
last_generation 5
target 3
seed 12345
ever_ready 1
backoff 2 3600003000000000 3600001000000000
failure 3600000000000000
failure 3600001000000000
exits crashed 7
exits no_heartbeat 1
listener 3 2 127.0.0.1:8080
listener 4 1 unix:/run/app sock
pid_file 5 /run/app/app.pid
previous_binary 9
binary /srv/app/bin/hello-http
started 3596400000000000
rollback 5 generation 5 was not ready within 20s
control 11 /run/app/control sock
upgrade_requested 3600002000000000
client 12 upgrade
rollouts reload_failed 1
last_rollout reload 4 1 3600000000000000 2 workers of generation 4 crashed at boot
slot_exit 0 90 1500 3599990000000000 crashed (signal 9)
worker pid=100 slot=0 gen=4 fd=7 spawned=3600000000000000 ready=3600000002000000 beat=3600005000000000 requests=42 age_limit=3600000 request_limit=1000 reason=none quit=- term=- kill=- kill_reason=none beating=1
worker pid=101 slot=1 gen=4 fd=8 spawned=3600000000000000 ready=- beat=3600005000000000 requests=42 age_limit=3600000 request_limit=1000 reason=max_age quit=3600006000000000 term=- kill=3600036000000000 kill_reason=graceful_timeout beating=1 out=12
end
)";

// The Handover the record above was written from, its pool given as version 3's pool list
Handover v2_handover()
{
    Handover h;
    h.version = 2;
    HandoverPool p;
    p.name = "main";
    p.state.target = 3;
    p.state.generation = 4;
    p.state.last_generation = 5;
    p.state.ever_ready = true;
    p.state.seed = 12345;
    p.state.failures = {t0, t0 + 1s};
    p.state.backoff_level = 2;
    p.state.backoff_until = t0 + 3s;
    p.state.backoff_mark = t0 + 1s;
    p.state.exits = {{"crashed", 7}, {"no heartbeat", 1}};
    WorkerRecord a = worker(100, 0, 4);
    a.ready_at = t0 + 2ms;
    a.last_heartbeat = t0 + 5s;
    a.requests = 42;
    a.age_limit = 3600s;
    a.request_limit = 1000;
    WorkerRecord b = a;
    b.pid = 101;
    b.slot = 1;
    b.ready_at.reset();
    b.reason = Reason::max_age;
    b.quit_at = t0 + 6s;
    b.kill_at = t0 + 36s;
    b.kill_reason = Reason::graceful_timeout;
    p.state.workers = {a, b};
    p.wanted = 3;
    p.listeners = {Listener{3, "127.0.0.1:8080", ListenerFamily::ipv4}, Listener{4, "unix:/run/app sock", ListenerFamily::unix_socket}};
    h.pools = {p};
    h.channels = {{100, 7}, {101, 8}};
    h.outputs = {{101, 12}};
    h.pid_file_fd = 5;
    h.pid_file_path = "/run/app/app.pid";
    h.previous_binary_fd = 9;
    h.binary = "/srv/app/bin/hello-http";
    h.started = t0 - 1h;
    h.rollback_from = 5;
    h.rollback_why = "generation 5 was not ready within 20s";
    h.control_fd = 11;
    h.control_path = "/run/app/control sock";
    h.clients = {{12, Command::upgrade}};
    h.history.add(0, control::ExitRecord{90, "crashed (signal 9)", 1500ms, t0 - 10s});
    h.history.add(control::RolloutRecord{Reason::reload, 4, true, "2 workers of generation 4 crashed at boot", t0});
    h.upgrade_requested = t0 + 2s;
    return h;
}

}  // namespace

TEST_CASE("a record of three pools hands over each pool's state, stage, held slots, sockets and workers, in order")
{
    const Handover in = three_pools();
    const Handover out = decode_handover(encode(in));
    CHECK(out.version == 3);
    REQUIRE(out.pools.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        const HandoverPool& a = in.pools[i];
        const HandoverPool& b = out.pools[i];
        CHECK(b.name == a.name);
        CHECK(b.state == a.state);
        CHECK(b.stage == a.stage);
        CHECK(b.reported == a.reported);
        CHECK(b.wanted == a.wanted);
        CHECK(b.step == a.step);
        CHECK(b.runs == a.runs);
        CHECK(b.last_restart == a.last_restart);
        CHECK(b.restart_pending == a.restart_pending);
        CHECK(b.why == a.why);
        CHECK(sockets(b.listeners) == sockets(a.listeners));
    }
    CHECK(out.pools[1].state.held.at(3) == TimePoint::max());   // held until `herdctl restart web`
    CHECK(out.pools[1].state.workers[1].reason == Reason::restart);
    CHECK(out.pools[2].state.phase == Phase::stopping_graceful);
    CHECK(out.failed == std::optional<std::string>("jobs"));
    CHECK(out.channels == in.channels);
    CHECK(out.outputs == in.outputs);
    CHECK(out.binary == "/usr/bin/herd");
    // A manager of one pool reads `pool` and `listeners`: the first pool's.
    CHECK(out.pool == in.pools[0].state);
    CHECK(sockets(out.listeners) == sockets(in.pools[0].listeners));
}

TEST_CASE("every pool of a running supervisor crosses the record and is adopted as it was")
{
    Supervision planned;
    planned.plan = RestartPlan{{{PlanStep::Kind::restart, {}}, {PlanStep::Kind::restart, 5s}, {PlanStep::Kind::wait, {}}}, 3};
    const std::vector<Supervision> supervision{planned, {}, {}};
    Shell shell = running(Strategy::rest, supervision, 2);
    shell.exit_at_once = false;
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);   // step 1: restart now; b and c roll
    shell.settle(t0 + 1s);
    shell.exit(shell.pids(0)[1], exited(1), t0 + 2s);            // step 2: slot held for 5s
    apply(shell.sup, ScalePool{1, Scale{3}}, t0 + 2s);
    apply(shell.sup, StopPool{2}, t0 + 2s);                      // c's workers still draining
    shell.settle(t0 + 2s);
    REQUIRE_FALSE(shell.sup.pools[0].state.held.empty());
    REQUIRE(shell.sup.pools[2].stage == PoolStage::stopping);

    Handover h;
    for (const Pool& p : shell.sup.pools) h.pools.push_back(handover_pool(p, {Listener{3, "127.0.0.1:8080", ListenerFamily::ipv4}}));
    const Handover out = decode_handover(encode(h));
    REQUIRE(out.pools.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        Pool before = shell.sup.pools[i];
        before.state.rollout.reset();   // the upgrade replaces every worker anyway
        Pool after = make_pool(before.name, pool_options(2), supervision[i]);
        adopt_pool(after, out.pools[i]);
        CHECK(after == before);
    }
}

TEST_CASE("a version 2 record of the release before several pools is adopted as one pool named main")
{
    const Handover out = decode_handover(v2_record);
    CHECK(out.version == 2);
    REQUIRE(out.pools.size() == 1);
    const HandoverPool& main = out.pools[0];
    const Handover expected = v2_handover();
    CHECK(main.name == "main");
    CHECK(main.state == expected.pools[0].state);
    CHECK(main.stage == PoolStage::running);
    CHECK(main.wanted == 3);   // the target: closed slots came with several pools
    CHECK(sockets(main.listeners) == sockets(expected.pools[0].listeners));
    CHECK(out.pool == main.state);
    CHECK(sockets(out.listeners) == sockets(main.listeners));
    CHECK(out.channels == expected.channels);
    CHECK(out.outputs == expected.outputs);
    CHECK(out.history == expected.history);
    CHECK(out.control_fd == 11);
    CHECK(out.rollback_from == 5);
    CHECK_FALSE(out.failed);
}

TEST_CASE("written as version 2, one pool reads byte for byte as the release before several pools wrote it")
{
    Handover h = v2_handover();
    CHECK(encode(h) == v2_record);
    // What version 2 cannot say is left out: the name, the stage, held slots.
    h.pools[0].name = "web";
    h.pools[0].stage = PoolStage::starting;
    h.pools[0].state.held = {{2, t0 + 5s}};
    h.failed = "web";
    CHECK(encode(h) == v2_record);
    // A manager of one pool fills `pool` and `listeners` instead of the pool list.
    Handover legacy = v2_handover();
    legacy.pool = legacy.pools[0].state;
    legacy.listeners = legacy.pools[0].listeners;
    legacy.pools.clear();
    CHECK(encode(legacy) == v2_record);
    // And version 3 of that one pool adopts the same.
    legacy.version = 3;
    const Handover out = decode_handover(encode(legacy));
    REQUIRE(out.pools.size() == 1);
    CHECK(out.pools[0].name == "main");
    CHECK(out.pools[0].state == legacy.pool);
}

TEST_CASE("several pools cannot be written for a binary of version 1 or 2")
{
    Handover h = three_pools();
    h.version = 2;
    CHECK(encode_error(h) == "version 2 of the hand-over record holds one pool, not 3 (cache, web, jobs)");
    h.version = 1;
    h.pools.pop_back();
    CHECK(encode_error(h) == "version 1 of the hand-over record holds one pool, not 2 (cache, web)");
}

TEST_CASE("a pool name the record could not read back is refused when writing")
{
    Handover h = three_pools();
    h.pools[1].name = "";
    CHECK(encode_error(h) == "pool name '' cannot be handed over");
    h.pools[1].name = "web\nend";
    CHECK(encode_error(h) == "pool name 'web\\x0aend' cannot be handed over");
    h.pools[1].name = " web";
    CHECK(encode_error(h) == "pool name ' web' cannot be handed over");
    h.pools[1].name = "cache";
    CHECK(encode_error(h) == "pool 'cache' is handed over twice");
    h = three_pools();
    h.failed = "db";
    CHECK(encode_error(h) == "the failed pool 'db' is not handed over");
}

TEST_CASE("a malformed version 3 record is refused, naming the line")
{
    const std::string head = "herd-handover 3\nbinary /usr/bin/herd\n";
    CHECK(error_of(head + "pool\nend\n") == "hand-over line 3: pool without a name");
    // A version 3 writer names every pool: a worker before any "pool" line belongs to none.
    CHECK(error_of(head + "worker pid=1 slot=0\npool main\nend\n") == "hand-over line 3: 'worker' before any 'pool' line");
    CHECK(error_of(head + "generation 2\npool main\nend\n") == "hand-over line 3: 'generation' before any 'pool' line");
    CHECK(error_of(head + "held 0 -\nend\n") == "hand-over line 3: 'held' before any 'pool' line");
    CHECK(error_of(head + "pool web\npool web\nend\n") == "hand-over line 4: pool 'web' appears twice");
    CHECK(error_of(head + "pool web\nheld 2\nend\n") == "hand-over line 4: malformed value");
    CHECK(error_of(head + "pool web\nheld 2 soon\nend\n") == "hand-over line 4: 'soon' is not a number");
    CHECK(error_of(head + "pool web\nstage sleeping\nend\n") == "hand-over line 4: unknown stage 'sleeping'");
    CHECK(error_of(head + "pool web\nphase resting\nend\n") == "hand-over line 4: unknown phase 'resting'");
    CHECK(error_of(head + "pool web\nwanted many\nend\n") == "hand-over line 4: malformed value");
    CHECK(error_of(head + "failed\npool web\nend\n") == "hand-over line 3: failed without a pool name");
    CHECK(error_of(head + "failed db\npool web\nend\n") == "hand-over line 3: failed pool 'db' has no 'pool' line");
    CHECK(error_of(head + "end\n") == "hand-over record has no 'pool' line");
    // Channels are keyed by pid: one worker in two pools would be adopted twice.
    const std::string w = " slot=0 gen=1 fd=-1 spawned=0 ready=- beat=0 requests=0 age_limit=0 request_limit=0"
                          " reason=none quit=- term=- kill=- kill_reason=none\n";
    CHECK(error_of(head + "pool a\nworker pid=7" + w + "pool b\nworker pid=7" + w + "end\n") ==
          "hand-over line 6: worker 7 appears twice");
    // Version 2 knows none of version 3's items.
    CHECK(error_of("herd-handover 2\npool web\nend\n") == "hand-over line 2: unknown item 'pool'");
    CHECK(error_of("herd-handover 2\nheld 0 -\nend\n") == "hand-over line 2: unknown item 'held'");
    // The record's own bytes go into a log line as printable text.
    CHECK(error_of("herd-handover 2\n\x1b[2J\nend\n") == "hand-over line 2: unknown item '\\x1b[2J'");
    // ... in a worker's fields, a number and a client's operation too
    CHECK(error_of(head + "pool a\nworker pid=7 reason\x1anone\nend\n") ==
          "hand-over line 4: field 'reason\\x1anone' is not key=value");
    CHECK(error_of(head + "pool a\nheld 0 1\x1b[2J\nend\n") == "hand-over line 4: '1\\x1b[2J' is not a number");
    CHECK(error_of(head + "client 12 \x1b[2Jstop\npool a\nend\n") ==
          "hand-over line 3: unknown control operation '\\x1b[2Jstop'");
}

TEST_CASE("a version 3 reader skips items and worker fields a later image of version 3 may add")
{
    Handover in = three_pools();
    std::string text = encode(in);
    text.insert(text.find("pool web\n"), "colour blue\n");
    text.insert(text.find("stage", text.find("pool web\n")), "weight 3 heavy\n");
    text.insert(text.find("kill_reason=none", text.find("pid=300")), "colour=blue ");
    const Handover out = decode_handover(text);
    REQUIRE(out.pools.size() == 3);
    CHECK(out.pools[1].state == in.pools[1].state);
    CHECK(out.pools[1].stage == in.pools[1].stage);
}

TEST_CASE("an adopted pool keeps its position in a plan only where this configuration's plan has it")
{
    Supervision two_steps;
    two_steps.plan = RestartPlan{{{PlanStep::Kind::restart, {}}, {PlanStep::Kind::wait, {}}}, 3};
    HandoverPool from;
    from.name = "web";
    from.state.target = 4;
    from.wanted = 5;
    from.step = 1;
    from.runs = 2;

    Pool pool = make_pool("web", pool_options(2), two_steps);
    adopt_pool(pool, from);
    CHECK(pool.step == 1);
    CHECK(pool.runs == 2);
    CHECK(pool.state.target == 4);        // an upgrade replaces the binary, not the pool size
    CHECK(pool.wanted == 5);
    CHECK(pool.options.workers == 2);     // options are this configuration's
    CHECK_FALSE(pool.state.backs_off);    // a plan replaces the restart limit

    from.step = 2;                        // a longer plan before the upgrade
    Pool shorter = make_pool("web", pool_options(2), two_steps);
    adopt_pool(shorter, from);
    CHECK(shorter.step == 0);
    CHECK(shorter.runs == 0);

    Pool no_plan = make_pool("web", pool_options(2));
    adopt_pool(no_plan, from);
    CHECK(no_plan.step == 0);
    CHECK(no_plan.state.backs_off);       // no plan: today's backoff rule

    from.stage = PoolStage::failed;
    Pool failed = make_pool("web", pool_options(2));
    adopt_pool(failed, from);
    CHECK_FALSE(failed.state.backs_off);  // a failed pool refills nothing more
}
