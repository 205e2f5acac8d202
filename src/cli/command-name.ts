// The command an argument list names ("traverse help agent" names agent): shared by the command
// list and the bundled CLI's loader, which must pick the script that holds that command. No
// imports: the loader runs it before anything else is loaded.

export function commandName(argv: readonly string[]): string | undefined {
  const words = argv.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}
