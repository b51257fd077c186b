import { describeKvmContract } from '../contract/index.js';
import { softKvmFixture } from './contract-guests.js';

describeKvmContract(softKvmFixture);
