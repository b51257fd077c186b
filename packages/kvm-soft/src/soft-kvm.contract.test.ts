import { describeKvmContract } from '@rxvmm/kvm-contract';
import { softKvmFixture } from './testing/index.js';

describeKvmContract(softKvmFixture);
