// herd: exec mode. `herd [options] -- COMMAND [ARGS...]` keeps N copies of COMMAND running as
// workers, with everything a herd server's manager does (docs/tutorial.md, "Exec mode").
#include <herd/manager/run.hpp>

int main(int argc, char** argv) { return herd::run_exec(argc, argv); }
