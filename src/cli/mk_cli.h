/*
 * mk_cli: the `mayak` command line. Subcommands:
 *   serve [--config FILE]          run the server (embedded defaults without --config)
 *   config check FILE              report every problem in FILE (file:line:col), exit 1 if any
 *   version
 *   ask [QUESTION] [--json] ...    answer as the support desk would (ask.c)
 *   keys, audit, guard, memory, kb ...   their modules' own command lines
 * Every subcommand accepts --config FILE.
 */
#ifndef MK_CLI_H
#define MK_CLI_H

/* Returns the process exit status. */
int mk_cli_main(int argc, char **argv);

/* `mayak ask [QUESTION...] [--json] [--config FILE] [--kb FILE]... [--no-demo] [--no-llm]`
 * (ask.c): answers as the support desk would — with the LLM through Mayak's pipeline
 * when the config declares a provider other than "local", else with the local
 * responder. With no QUESTION, reads one question per line from standard input and
 * prints one JSON line per question. argv starts after "ask"; data_dir is the
 * config's (for the stored knowledge base). Returns the process exit status. */
int mk_cli_ask_main(int argc, char **argv, const char *data_dir);

#endif
