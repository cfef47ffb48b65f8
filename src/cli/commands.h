/* The `ptyc` subcommands. Each returns the process exit code (0 ok, 1 failure,
 * 2 usage error) and prints its own errors as one line "ptyc <cmd>: error: ...". */
#ifndef PT_COMMANDS_H
#define PT_COMMANDS_H

int pt_cmd_run(int argc, char **argv);
int pt_cmd_simulate(int argc, char **argv);
int pt_cmd_info(int argc, char **argv);
int pt_cmd_devices(int argc, char **argv);
int pt_cmd_compare(int argc, char **argv);
int pt_cmd_launch(int argc, char **argv);

/* "--help" or "-h" among argv[1..]? */
int pt_wants_help(int argc, char **argv);

#endif
