import { type Resource, resourcesOf, type Workload, workloadOf } from '../model.ts';
import type { SourceDocument } from '../types.ts';
import { commentWaivers } from '../waivers.ts';
import { type ComposeService, composeServices, isComposeDocument } from './compose.ts';
import { type DockerfileModel, parseDockerfile } from './dockerfile.ts';
import { parseYamlDocuments } from './yaml-source.ts';

export function isDockerfileName(name: string): boolean {
  return (
    /^(Dockerfile|Containerfile)(\.[\w.-]+)?$/i.test(name) || /\.(dockerfile|containerfile)$/i.test(name)
  );
}

/** Everything read so far, already in the model: what the rules run over. */
export class ScanInputs {
  readonly resources: Resource[] = [];
  readonly workloads: Workload[] = [];
  readonly dockerfiles: DockerfileModel[] = [];
  readonly composeServices: ComposeService[] = [];
  /** Things the scan could not look at, said out loud (a missing renderer, an unreadable file). */
  readonly warnings: string[] = [];
  readonly files = new Set<string>();
  readonly commentWaivers = new Map<string, ReturnType<typeof commentWaivers>>();
  documents = 0;

  addDockerfile(text: string, file: string): void {
    this.files.add(file);
    this.documents++;
    this.dockerfiles.push(parseDockerfile(text, file));
    this.noteComments(text, file);
  }

  /** YAML or JSON: Kubernetes objects (multi-document, Lists) or a Compose file. */
  addYaml(text: string, file: string, parse: typeof parseYamlDocuments = parseYamlDocuments): void {
    this.files.add(file);
    this.noteComments(text, file);
    for (const document of parse(text, file)) this.addDocument(document.value, document.source);
  }

  private noteComments(text: string, file: string): void {
    if (text.includes('cardhold:waive')) this.commentWaivers.set(file, commentWaivers(text));
  }

  addDocument(value: unknown, source: SourceDocument): void {
    this.documents++;
    if (isComposeDocument(value)) {
      for (const service of composeServices(value, source)) {
        this.composeServices.push(service);
        this.resources.push(service.resource);
        this.workloads.push(service.workload);
      }
      return;
    }
    for (const resource of resourcesOf(value, source)) this.addResource(resource);
  }

  addResource(resource: Resource): void {
    this.resources.push(resource);
    const workload = workloadOf(resource);
    if (workload) this.workloads.push(workload);
  }
}
