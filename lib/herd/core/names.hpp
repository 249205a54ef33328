// What a pool's workers are called where an operator looks: process titles, log lines, and the
// environment of exec mode's programs (HERD_POOL). Pure.
//
//   pool     role (log lines)   title (ps -o args)
//   main     worker[2]          NAME: worker[2] gen 3
//   web      web[2]             NAME: web[2] gen 3
//
// The pool named main (the one pool of a server without [pool.NAME] sections) keeps the words of
// a server of one pool: titles and log lines grepped for `worker[` go on matching.
#pragma once

#include <string>
#include <string_view>

namespace herd {

/// The pool a command line without [pool.NAME] sections makes.
inline constexpr std::string_view default_pool = "main";

/// A worker's name in log lines: "web[2]", "worker[2]" for the pool main, "web[?]" without a slot (-1).
std::string worker_role(std::string_view pool, int slot);

/// A worker's process title: "NAME: web[2] gen 3", "NAME: worker[2] gen 3" for the pool main.
std::string worker_title(std::string_view name, std::string_view pool, int slot, unsigned generation);

}  // namespace herd
