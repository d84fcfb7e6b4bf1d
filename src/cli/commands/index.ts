// Every `resnet` subcommand registers itself on the program through one function here.
import type { Command } from 'commander';
import { registerCompare } from './compare.js';
import { registerConvert } from './convert.js';
import { registerDashboard } from './dashboard.js';
import { registerDegradation } from './degradation.js';
import { registerEmbed } from './embed.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerPredict } from './predict.js';
import { registerReport } from './report.js';
import { registerServe } from './serve.js';
import { registerSummary } from './summary.js';
import { registerTrain } from './train.js';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [];

commands.push(registerTrain, registerEval, registerPredict, registerEmbed, registerServe);
commands.push(registerReport, registerCompare, registerDashboard, registerDegradation);
commands.push(registerSummary);
commands.push(registerConvert, registerExport);
