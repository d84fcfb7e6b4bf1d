// Every `resnet` subcommand registers itself on the program through one function here.
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [];
