// The standard options (see option_table.hpp).
#include <herd/config/option_table.hpp>

#include <herd/os/listeners.hpp>
#include <herd/config/option_values.hpp>
#include <herd/config/supervision_values.hpp>

#include <algorithm>

namespace herd {

std::string join_levels()
{
    std::string out;
    for (const auto level : log_levels) {
        if (!out.empty()) out += ", ";
        out += level;
    }
    return out;
}

std::string long_name(const OptionSpec& spec)
{
    const std::string names = spec.names;
    return names.substr(0, names.find(','));
}

namespace {

/// A row of a pool's supervision: set in Supervision, not in Options.
OptionSpec supervision_spec(const char* names, const char* param, std::string help, std::string default_text,
                            void (*supervise)(Supervision&, const std::string&))
{
    OptionSpec spec{OptionScope::pool, "Supervision", names, param, std::move(help), std::move(default_text),
                    OptionKind::value, nullptr};
    spec.supervise = supervise;
    return spec;
}

std::string parse_level(const std::string& text)
{
    if (std::find(std::begin(log_levels), std::end(log_levels), text) == std::end(log_levels))
        throw std::invalid_argument("expected one of " + join_levels());
    return text;
}

/// "off", which --help shows as the default of the limits that 0 turns off, is read as 0 too.
bool is_off(const std::string& text)
{
    return text == "off";
}

}  // namespace

std::vector<OptionSpec> standard_specs(const Options& d, bool exec)
{
    // Defaults in the syntax the options take ("10s"), so they can be pasted
    const auto dur = [](Duration v) {
        std::string text = format_duration(v);
        text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
        return text;
    };
    const auto off_or = [&](Duration v) { return v.count() == 0 ? std::string("off") : dur(v); };
    const std::string restart = std::to_string(d.restart_limit.count) + "/" + dur(d.restart_limit.window);
    const std::string jitter = std::to_string(static_cast<int>(d.max_worker_age_jitter * 100 + 0.5)) + "%";

    using Kind = OptionKind;
    constexpr OptionScope manager = OptionScope::manager;
    constexpr OptionScope pool = OptionScope::pool;
    using O = Options;
    using S = const std::string&;
    std::vector<OptionSpec> specs = {
        {pool, "Pool", "workers,w", "N", "target pool size; 0 idles until TTIN",
         std::to_string(d.workers), Kind::value, [](O& o, S v) { o.workers = parse_unsigned(v); }},
        {pool, "Pool", "listen,l", "ADDR", "HOST:PORT, [V6]:PORT, :PORT, unix:PATH (repeatable)", "",
         Kind::repeated, [](O& o, S v) {
             parse_listen(v);   // a bad address is a usage error here, in --check too, never at bind
             o.listen.push_back(v);
         }},
        {pool, "Pool", "spare", "N", "extra workers while others retire", std::to_string(d.spare),
         Kind::value, [](O& o, S v) { o.spare = parse_unsigned(v); }},
        {pool, "Pool", "restart-limit", "R/T", "back off after more than R exits in T",
         restart, Kind::value, [](O& o, S v) { o.restart_limit = parse_restart_limit(v); }},
        {pool, "Pool", "max-worker-age", "D", "retire a worker this old", off_or(d.max_worker_age),
         Kind::value, [](O& o, S v) { o.max_worker_age = is_off(v) ? Duration{} : parse_duration(v); }},
        {pool, "Pool", "max-worker-age-jitter", "F", "vary max age by up to F (10% or 0.1)", jitter,
         Kind::value, [](O& o, S v) { o.max_worker_age_jitter = parse_fraction(v); }},
        {pool, "Pool", "max-requests", "N", "retire a worker after N requests",
         d.max_requests == 0 ? "off" : std::to_string(d.max_requests), Kind::value,
         [](O& o, S v) { o.max_requests = is_off(v) ? 0 : parse_whole(v); }},
        {pool, "Pool", "max-requests-jitter", "N", "vary max requests by up to N",
         std::to_string(d.max_requests_jitter), Kind::value,
         [](O& o, S v) { o.max_requests_jitter = parse_whole(v); }},
        {pool, "Pool", "max-worker-memory", "SIZE", "retire a worker whose own memory stays over SIZE (512M, 2G)",
         d.max_worker_memory == 0 ? "off" : format_size(d.max_worker_memory), Kind::value,
         [](O& o, S v) { o.max_worker_memory = is_off(v) ? 0 : parse_size(v); }},
        {pool, "Pool", "max-worker-memory-window", "D", "how long a worker may stay over --max-worker-memory",
         dur(d.max_worker_memory_window), Kind::value,
         [](O& o, S v) { o.max_worker_memory_window = parse_duration(v); }},

        {pool, "Heartbeats and timeouts", "heartbeat-interval", "D", "how often a worker beats",
         dur(d.heartbeat_interval), Kind::value, [](O& o, S v) { o.heartbeat_interval = parse_duration(v); }},
        {pool, "Heartbeats and timeouts", "heartbeat-timeout", "D", "retire a worker silent this long; 0: off",
         off_or(d.heartbeat_timeout), Kind::value, [](O& o, S v) { o.heartbeat_timeout = is_off(v) ? Duration{} : parse_duration(v); }},
        {pool, "Heartbeats and timeouts", "boot-timeout", "D", "kill a worker not ready by then",
         dur(d.boot_timeout), Kind::value, [](O& o, S v) { o.boot_timeout = parse_duration(v); }},
        {pool, "Heartbeats and timeouts", "graceful-timeout", "D", "from QUIT to KILL",
         dur(d.graceful_timeout), Kind::value, [](O& o, S v) { o.graceful_timeout = parse_duration(v); }},
        {pool, "Heartbeats and timeouts", "kill-timeout", "D", "from TERM to KILL",
         dur(d.kill_timeout), Kind::value, [](O& o, S v) { o.kill_timeout = parse_duration(v); }},
        {manager, "Heartbeats and timeouts", "upgrade-timeout", "D", "USR2: new generation ready within",
         dur(d.upgrade_timeout), Kind::value, [](O& o, S v) { o.upgrade_timeout = parse_duration(v); }},

        {pool, "Exec mode", "heartbeat", "MODE", "auto: a program's silence is watched from its first heartbeat on; "
         "required: from its start (ready only at a heartbeat); off: never",
         to_string(d.heartbeat), Kind::value, [](O& o, S v) { o.heartbeat = parse_heartbeat_mode(v); }, false, true},
        {pool, "Exec mode", "ready-after", "D", "unless --heartbeat required, a program is ready once it has run D",
         d.ready_after ? dur(*d.ready_after) : "", Kind::value,
         [](O& o, S v) { o.ready_after = parse_duration(v); }, false, true},
        {pool, "Exec mode", "stop-signal", "SIG", "asks a program to finish and exit (retire, QUIT to herd); "
         "KILL follows after --graceful-timeout", signal_text(d.stop_signal), Kind::value,
         [](O& o, S v) { o.stop_signal = parse_signal(v); }, false, true},
        {pool, "Logging", "stdout-level", "LEVEL", "the log level of a worker's stdout lines", d.stdout_level,
         Kind::value, [](O& o, S v) { o.stdout_level = parse_level(v); }},
        {pool, "Logging", "stderr-level", "LEVEL", "the log level of a worker's stderr lines", d.stderr_level,
         Kind::value, [](O& o, S v) { o.stderr_level = parse_level(v); }},

        // Several pools (DESIGN.md §7a): the strategy is the manager's, set by options.cpp
        {manager, "Supervision", "restart-strategy", "S", "when an exit needs a restart: one (that worker), "
         "rest (and every later pool), all (every pool)", "one", Kind::value, nullptr},
        supervision_spec("restart", "TYPE", "which exits need a restart: permanent (any), transient (abnormal "
                         "ones), temporary (none; the pool shrinks)", "permanent",
                         [](Supervision& s, S v) { s.restart = parse_restart_type(v); }),
        supervision_spec("plan", "PLAN", "what successive unexpected exits get, e.g. \"restart, restart 5s, wait\" "
                         "(steps: restart, restart D, wait, stop, delete)", "",
                         [](Supervision& s, S v) {
                             s.plan = RestartPlan{parse_plan(v), s.plan ? s.plan->count : std::nullopt};
                         }),
        supervision_spec("plan-count", "N", "how many times the plan runs before the pool has failed (or infinity)",
                         "infinity", [](Supervision& s, S v) {
                             s.plan = RestartPlan{s.plan ? s.plan->steps : std::vector<PlanStep>{}, parse_plan_count(v)};
                         }),
        supervision_spec("on-restart-limit", "ACTION", "without a plan, past --restart-limit: backoff, wait "
                         "(for herdctl restart POOL) or stop (the pool has failed)", "backoff",
                         [](Supervision& s, S v) { s.on_restart_limit = parse_on_restart_limit(v); }),

        {manager, "Process", "pid-file", "PATH", "write the manager's pid here, locked", "", Kind::value,
         [](O& o, S v) { o.pid_file = v; }},
        {manager, "Process", "control", "PATH", "unix control socket for herdctl", "", Kind::value,
         [](O& o, S v) { o.control = v; }},
        {pool, "Process", "user", "USER", "workers drop to this user after fork", "", Kind::value,
         [](O& o, S v) { o.user = v; }},
        {pool, "Process", "group", "GROUP", "workers drop to this group after fork", "", Kind::value,
         [](O& o, S v) { o.group = v; }},
        {manager, "Process", "name", "NAME", "shown in process titles", "binary name",
         Kind::value, [](O& o, S v) { o.name = v; }},
        {manager, "Process", "daemon", nullptr, "detach once the pool is ready", "", Kind::flag,
         [](O& o, S v) { o.daemon = parse_bool(v); }},
        {manager, "Process", "check", nullptr, "check the options, exit 0 or 2", "", Kind::flag,
         [](O& o, S v) { o.check = parse_bool(v); }, true},   // in a file, every start would only check
        {manager, "Process", "adopt-check", "V", "with --check: confirm this binary can adopt a running "
         "manager's hand-over version V (USR2 runs this)", "", Kind::value,
         [](O& o, S v) { o.adopt_check = parse_unsigned(v); }, true},

        {manager, "Logging", "log-level", "LEVEL", join_levels(), d.log_level, Kind::value,
         [](O& o, S v) { o.log_level = v; }},
        {manager, "Logging", "log-file", "PATH", "instead of stderr; USR1 reopens", "", Kind::value,
         [](O& o, S v) { o.log_file = v; }},

        {manager, "General", "config", "FILE", "read options from FILE (key = value lines)", "",
         Kind::value, [](O& o, S v) { o.config = v; }, true},
        {manager, "General", "help,h", nullptr, "show this help and exit", "", Kind::flag, nullptr, true},
        {manager, "General", "version", nullptr, "show the version and exit", "", Kind::flag, nullptr, true},
    };
    // Exec mode's own options are unknown to a server binary, whose workers are herd::Workers.
    std::erase_if(specs, [&](const OptionSpec& s) { return s.exec_only && !exec; });
    return specs;
}

}  // namespace herd
