// --log-level and --log-format, with their environment twins, for the commands that log. They
// are checked before the command starts: a bad value is a usage error, not a crash later.
import { Option, type Command } from 'commander';
import { LOG_FORMATS, LOG_LEVELS } from '../log/logger.js';
import { UsageError } from './errors.js';

export function addLogOptions(cmd: Command, defaultLevel: string): Command {
  cmd
    .addOption(new Option('--log-level <level>', `log level on stderr: ${LOG_LEVELS.join(', ')} (default: ${defaultLevel})`).env('TRAVERSE_LOG_LEVEL'))
    .addOption(new Option('--log-format <format>', 'pretty (one readable line each; default on a terminal) or json (default otherwise)').env('TRAVERSE_LOG_FORMAT'));
  cmd.hook('preAction', (command) => {
    const level = command.getOptionValue('logLevel') as string | undefined;
    const format = command.getOptionValue('logFormat') as string | undefined;
    if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new UsageError(`--log-level "${level}" is not a level; use one of ${LOG_LEVELS.join(', ')}`);
    }
    if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--log-format "${format}" is not a format; use pretty or json`);
    }
    // The loggers read these when they are made, after this hook.
    if (level !== undefined) process.env.TRAVERSE_LOG_LEVEL = level;
    if (format !== undefined) process.env.TRAVERSE_LOG_FORMAT = format;
  });
  return cmd;
}
